"""brandpy's research tools from `docker run`: the container labels that turn
them on, checked at create and applied by the shim at each start.

    brandpy.engine=native|python        the supervisor loop (default native)
    brandpy.trace=1|NAME[,NAME...]      trace every trapped call, or only these
    brandpy.trace-all=1                 trap every call (the trace then shows
                                        calls the filter would let run natively)
    brandpy.inject=SPEC[;SPEC...]       faults, in brandpy/runtime/inject.py's syntax
    brandpy.seed=N                      seed of the injection draws

Their results live in the container's directory: the trace of the latest
run as JSON lines (TRACE_FILE, rendered as text by tracefile.py) and the
final statistics and ledger of the latest run (SYSCALLS_FILE).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from brandpy.supervise.container import ENGINES, Research

from .errors import InvalidParameter

PREFIX = "brandpy."
ENGINE, TRACE, TRACE_ALL, INJECT, SEED = (PREFIX + k for k in
                                          ("engine", "trace", "trace-all", "inject", "seed"))
LABELS = (ENGINE, TRACE, TRACE_ALL, INJECT, SEED)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
TRACE_FILE = "trace.jsonl"
SYSCALLS_FILE = "syscalls.json"


@dataclass(frozen=True)
class ResearchSpec:
    engine: str = "native"
    trace: bool = False
    trace_filter: tuple[str, ...] = ()    # empty: every traced call
    trace_all: bool = False
    inject: tuple[str, ...] = ()
    seed: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ResearchSpec:
        return cls(engine=d.get("engine", "native"), trace=bool(d.get("trace")),
                   trace_filter=tuple(d.get("trace_filter") or ()),
                   trace_all=bool(d.get("trace_all")), inject=tuple(d.get("inject") or ()),
                   seed=int(d.get("seed") or 0))

    def inspect(self) -> dict:
        """What docker inspect's Brandpy key says of the settings."""
        return {"Trace": self.trace,
                "TraceFilter": list(self.trace_filter), "TraceAll": self.trace_all,
                "Inject": list(self.inject), "Seed": self.seed}


def _names() -> dict[int, str]:
    from syscalls.table import table
    return table().names()


def _flag(labels: dict[str, str], key: str) -> bool:
    value = labels.get(key, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidParameter(f"invalid label {key}={labels[key]!r}: use 1 to turn it on or 0 "
                           "to turn it off")


def from_labels(labels: dict[str, str]) -> tuple[ResearchSpec, list[str]]:
    """The research settings a container's labels ask for, and warnings;
    InvalidParameter (400 at create) for a label brandpy cannot apply."""
    from brandpy.runtime.inject import InjectError, parse

    unknown = sorted(k for k in labels if k.startswith(PREFIX) and k not in LABELS)
    if unknown:
        raise InvalidParameter(f"unknown label {unknown[0]}: the labels brandpy reads are "
                               f"{', '.join(LABELS)} (see README, 'Research over the API')")
    engine = labels.get(ENGINE, "").strip() or "native"
    if engine not in ENGINES:
        raise InvalidParameter(f"invalid label {ENGINE}={labels[ENGINE]!r}: use native or "
                               "python")
    names = _names()
    trace_text = labels.get(TRACE, "").strip()
    trace_filter: tuple[str, ...] = ()
    if trace_text.lower() in TRUE + FALSE:
        trace = _flag(labels, TRACE)
    else:
        trace_filter = tuple(n.strip() for n in trace_text.split(",") if n.strip())
        known = set(names.values())
        bad = [n for n in trace_filter if n not in known]
        if bad:
            raise InvalidParameter(f"invalid label {TRACE}={trace_text!r}: unknown syscall "
                                   f"{bad[0]!r}; give 1 (every call) or syscall names "
                                   "separated by commas")
        trace = True
    by_name = {name: nr for nr, name in names.items()}
    inject = tuple(s.strip() for s in labels.get(INJECT, "").split(";") if s.strip())
    for spec in inject:
        try:
            parse(spec, by_name)
        except InjectError as exc:
            raise InvalidParameter(f"invalid label {INJECT}: {exc}") from None
    seed_text = labels.get(SEED, "").strip()
    try:
        seed = int(seed_text or 0)
    except ValueError:
        raise InvalidParameter(f"invalid label {SEED}={seed_text!r}: the seed is an "
                               "integer") from None
    warnings = []
    if seed_text and not inject:
        warnings.append(f"label {SEED} has no effect without {INJECT}")
    return ResearchSpec(engine, trace, trace_filter, _flag(labels, TRACE_ALL), inject,
                        seed), warnings


def research(spec: ResearchSpec, cdir: Path, files: ExitStack) -> Research:
    """The runtime's Research for one run: the trace goes to TRACE_FILE
    (replaced at each start; written by the tracer thread), injections
    start counting afresh so each run repeats the same faults."""
    from brandpy.runtime.inject import Injector, parse
    from brandpy.runtime.trace import Tracer

    names = _names()
    out = Research(trace_all=spec.trace_all)
    if spec.trace:
        trace = files.enter_context(open(cdir / TRACE_FILE, "w", encoding="utf-8"))
        out.tracer = Tracer(trace, names, json_lines=True, names=set(spec.trace_filter))
    if spec.inject:
        by_name = {name: nr for nr, name in names.items()}
        out.injector = Injector([parse(s, by_name) for s in spec.inject], spec.seed)
    return out
