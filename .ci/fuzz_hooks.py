"""Loaded into schemathesis by .ci/fuzz-api (SCHEMATHESIS_HOOKS). Not a check: a guard for the fuzzer itself.

CPython 3.11 keeps the AST constructor's recursion depth in per-interpreter state, so two threads building an
AST at once can trip "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The two
fuzzing workers are threads, and Hypothesis parses source to describe the lambdas in its strategies; a CI run
failed on exactly that. One lock around ast.parse lets one thread build an AST at a time."""

import ast
import threading

_parse = ast.parse
_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time
