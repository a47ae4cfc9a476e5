"""The tally of the script tests (tests/mpi, tests/e2e): each check is counted, each failure kept with its
reason; finish() prints the failures and the last line ctest shows, "N passed, N failed", and exits."""
import sys


class Checks:
    def __init__(self):
        self.count, self.failures = 0, []

    def __call__(self, ok, what):
        self.count += 1
        if not ok:
            self.failures.append(what)

    def finish(self):
        for f in self.failures:
            print("FAIL:", f)
        print(f"{self.count - len(self.failures)} passed, {len(self.failures)} failed")
        sys.exit(1 if self.failures else 0)
