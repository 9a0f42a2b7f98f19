"""Container IDs and names: 64 hex digits, and Docker's adjective_surname
style for containers created without --name (the grammar of names a
client gives is brandpy.pathnames')."""

from __future__ import annotations

import secrets

_LEFT = ("admiring", "bold", "brave", "busy", "clever", "cool", "dazzling", "eager",
         "elastic", "festive", "focused", "gallant", "gifted", "happy", "hopeful",
         "jolly", "keen", "kind", "loving", "lucid", "modest", "nifty", "optimistic",
         "peaceful", "practical", "quirky", "relaxed", "serene", "sharp", "stoic",
         "sweet", "tender", "trusting", "upbeat", "vibrant", "wizardly", "zealous")
_RIGHT = ("agnesi", "babbage", "bell", "bohr", "cerf", "curie", "darwin", "dijkstra",
          "einstein", "euler", "feynman", "franklin", "galois", "goldberg", "hamilton",
          "hopper", "hypatia", "kepler", "knuth", "lamport", "liskov", "lovelace",
          "mccarthy", "meitner", "noether", "pascal", "perlman", "ritchie", "shannon",
          "thompson", "torvalds", "turing", "wing", "wozniak")


def new_id() -> str:
    return secrets.token_hex(32)


def random_name() -> str:
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}"
