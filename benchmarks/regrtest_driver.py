"""Runs inside the guest, under the guest's own python3 (3.11): CPython's
regrtest on the test modules named in argv, unchanged, except that every
test's outcome is written out the moment it is known.

Each record is one line of JSON after a marker, written to a private copy
of stdout with a single write(2): a test that forks, redirects fd 1 or
prints without a newline cannot split or swallow it, and a test that hangs
or kills its process still leaves the records of every test before it and
a "start" record naming itself. A watchdog (faulthandler) dumps every
thread's stack and exits when one test runs longer than --per-test, so the
module ends by itself and the runtime still prints its report.

Usage: python3 regrtest_driver.py [--per-test SECONDS] REGRTEST-ARGS..."""

import faulthandler
import json
import os
import sys
import time
import traceback
import unittest

MARK = "\x1ebrandpy-regrtest "
DETAIL_CHARS = 4000          # the end of a traceback is where the error is

_records = 1                 # main() points this at a private copy of stdout


def emit(**record: object) -> None:
    # A forked child running unittest code is not the test run: the pid tells.
    record.update(pid=os.getpid(), t=round(time.monotonic(), 3))
    os.write(_records, ("\n" + MARK + json.dumps(record) + "\n").encode())


def _names(test: unittest.TestCase) -> dict[str, str]:
    from unittest.case import _SubTest  # type: ignore[attr-defined]  # private (typeshed omits it), there since 3.4
    if isinstance(test, _SubTest):
        return {"id": test.test_case.id(), "sub": test._subDescription()}
    return {"id": test.id()}


def _trace(err: tuple) -> str:
    return "".join(traceback.format_exception(*err))[-DETAIL_CHARS:]


def recording(base: type, per_test: float, watchdog_file: object) -> type:
    """regrtest's result class, recording each outcome as it happens."""

    class RecordingResult(base):
        def startTest(self, test):
            emit(ev="start", **_names(test))
            faulthandler.dump_traceback_later(per_test, exit=True, file=watchdog_file)
            super().startTest(test)

        def stopTest(self, test):
            faulthandler.cancel_dump_traceback_later()
            super().stopTest(test)

        def _outcome(self, test, outcome: str, detail: str | None = None) -> None:
            emit(ev="result", outcome=outcome, detail=detail, **_names(test))

        def addSuccess(self, test):
            self._outcome(test, "passed")
            super().addSuccess(test)

        def addFailure(self, test, err):
            self._outcome(test, "failed", _trace(err))
            super().addFailure(test, err)

        def addError(self, test, err):
            self._outcome(test, "error", _trace(err))
            super().addError(test, err)

        def addSkip(self, test, reason):
            self._outcome(test, "skipped", reason)
            super().addSkip(test, reason)

        def addExpectedFailure(self, test, err):
            self._outcome(test, "xfail")
            super().addExpectedFailure(test, err)

        def addUnexpectedSuccess(self, test):
            self._outcome(test, "xpass")
            super().addUnexpectedSuccess(test)

        def addSubTest(self, test, subtest, err):
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                self._outcome(subtest, "failed" if failed else "error", _trace(err))
            super().addSubTest(test, subtest, err)

    return RecordingResult


def main() -> None:
    global _records
    from test.libregrtest import main as regrtest
    from test.support import testresult

    args = sys.argv[1:]
    per_test = 300.0
    if args[:1] == ["--per-test"]:
        per_test, args = float(args[1]), args[2:]
    _records = os.dup(1)
    watchdog_file = os.fdopen(os.dup(2), "w")
    # regrtest looks the class up by name each time it makes a runner.
    testresult.RegressionTestResult = recording(testresult.RegressionTestResult, per_test,
                                                watchdog_file)
    emit(ev="begin", python=sys.version.split()[0], argv=args)
    sys.argv[1:] = args
    regrtest()


if __name__ == "__main__":
    main()
