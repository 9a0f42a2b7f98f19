"""Errors as runc reports them: a message on stderr (and in --log), exit 1."""


class OciError(Exception):
    """An operation failed; the message says what to do about it."""


class NotExist(OciError):
    def __init__(self, cid: str) -> None:
        super().__init__(f"container {cid} does not exist")
