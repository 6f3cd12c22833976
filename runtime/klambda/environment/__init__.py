"""Execution environments: the processes that run a function's handler.

Everything in this package runs inside an environment or its zygote, so it uses the
standard library only (import-linter enforces it): the zygote stays small and
single-threaded, and a forked environment pays for no import it does not need.

- `protocol`: the frames exchanged with the worker over a socketpair.
- `context`: Lambda's `context` object.
- `bootstrap`: init and the invoke loop of one environment.
- `zygote`: the fork server that starts environments from a warm interpreter.
"""
