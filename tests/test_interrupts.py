"""A Ctrl-C (KeyboardInterrupt) at a moment CPython delivers it leaves no state behind for the next call."""
from __future__ import annotations

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab import accounting, memory
from jacobian_lab.engines import base


class _InterruptedAfterSet:
    """A context variable whose first set is interrupted as it returns: CPython checks for a signal right after
    a C call such as ContextVar.set, before its result is stored."""

    def __init__(self, var):
        self.var, self.armed = var, True

    def get(self):
        return self.var.get()

    def set(self, value):
        token = self.var.set(value)
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return token

    def reset(self, token):
        self.var.reset(token)


def f(x):
    return np.sum(np.sin(x) * x)


@pytest.mark.parametrize("module, name", [(base, "_TRACING"), (memory, "MATRIX")])
def test_an_interrupt_right_after_a_context_variable_is_set_leaves_it_as_it_was(module, name, monkeypatch):
    """The tracing depth left at 1 made the thread inside a derivative for good: jit never compiled again."""
    var = getattr(module, name)
    before = var.get()
    monkeypatch.setattr(module, name, _InterruptedAfterSet(var))
    with pytest.raises(KeyboardInterrupt):
        jl.hessian(f)(np.ones(3))
    assert var.get() == before
    monkeypatch.undo()
    jitted = jl.jit(jl.jacobian(np.tanh))
    jitted(np.ones(3))
    assert jitted.compiles == 1


@pytest.mark.parametrize("call", [lambda: jl.count_flops(f, np.ones(3)), lambda: jl.predict(f, np.ones(3)),
                                  lambda: jl.jit(jl.jacobian(f))(np.ones(3)),
                                  lambda: jl.measure(f, np.ones(3), repeat=1)],
                         ids=["count_flops", "predict", "jit's recording", "measure"])
def test_an_interrupt_at_the_first_line_of_a_counting_blocks_exit_leaves_no_counter(call, monkeypatch):
    """A Ctrl-C that arrives during a block is delivered at the first line of its __exit__: the counter (or a jit
    recording) stayed the thread's, and every later call counted (or was recorded) into it."""
    jl.prediction.clear_cache()

    def interrupted(self, *exc):
        raise KeyboardInterrupt

    monkeypatch.setattr(accounting.counting, "__exit__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        call()
    assert accounting.active_counter() is None


def test_forgetting_a_recorded_value_runs_no_python_code_that_could_take_a_ctrl_c():
    """A recording forgets a value's id in a weakref callback as it dies. As a Python function the callback took
    a Ctrl-C that arrived meanwhile, and CPython prints and drops what a callback raises: the interrupt was lost
    (22 of 3,000 random interrupts of jit first calls)."""
    import sys

    from jacobian_lab import staging

    index, value = {}, np.ones(3)
    index[id(value)] = 0
    ref = staging._watch(value, index)
    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(frame.f_code.co_name) if event == "call" else None)
    try:
        del value
    finally:
        sys.setprofile(None)
    assert ref() is None and not index
    assert calls == []


def test_variables_f_sets_in_a_counted_call_stay_set_as_in_an_eager_one():
    """The library's counting blocks run in a copy of the context: what f set there (np.seterr, its own context
    variables) was dropped with it, unlike in an eager call."""
    import contextvars

    mine = contextvars.ContextVar("jacobian_lab_tag", default="unset")  # this package's own are kept apart by identity

    def f(x):
        mine.set("set by f")
        np.seterr(over="ignore")
        return np.sum(x ** 2)

    before = np.geterr()
    try:
        for call in (lambda: jl.count_flops(f, np.ones(3)), lambda: jl.predict(f, np.ones(3)),
                     lambda: jl.jit(jl.grad(f))(np.ones(3))):
            np.seterr(**before)
            token = mine.set("unset")
            call()
            assert (mine.get(), np.geterr()["over"]) == ("set by f", "ignore")
            mine.reset(token)
    finally:
        np.seterr(**before)
    assert accounting.active_counter() is None
