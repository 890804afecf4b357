"""Property tests: random NumPy programs, both accumulation orders, finite differences.

Hypothesis draws an input shape (0-d to 3-d, sides 1-5) and a program of 1-4
steps: smooth unary functions, arithmetic with constants that broadcast (and
may add an axis), reductions over random axes, cumsum, slicing, reshape and
transpose. Every function used is smooth on the values it meets (log of
x**2 + 1, exp of tanh, ...), so central differences are a valid reference.
"""
from __future__ import annotations

import numpy as np
from helpers import assert_fd_close, central_differences
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jacobian_lab as jl

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

UNARY = {
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "arctan": np.arctan,
    "log(v**2+1)": lambda v: np.log(v ** 2 + 1.0),
    "sqrt(v**2+1)": lambda v: np.sqrt(v ** 2 + 1.0),
    "square": lambda v: v ** 2,
    "cube": lambda v: v ** 3,
    "exp(tanh)": lambda v: np.exp(np.tanh(v)),
    "1/(v**2+1)": lambda v: 1.0 / (v ** 2 + 1.0),
    "sinh(tanh)": lambda v: np.sinh(np.tanh(v)),
    "cosh(sin)": lambda v: np.cosh(np.sin(v)),
    "expm1(sin)": lambda v: np.expm1(np.sin(v)),
    "log1p(v**2)": lambda v: np.log1p(np.square(v)),
    "arcsin(tanh/2)": lambda v: np.arcsin(np.tanh(v) / 2),
    "v*sin(v)": lambda v: v * np.sin(v),
    "v*flip(v)": lambda v: v * np.flip(v),
}

BINARY = {
    "add": lambda v, c: v + c,
    "subtract": lambda v, c: c - v,
    "multiply": lambda v, c: v * c,
    "divide": lambda v, c: v / c,
    "rdivide": lambda v, c: c / (v ** 2 + 1.0),
    "power": lambda v, c: (v ** 2 + 1.0) ** c,
}

REDUCTIONS = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "prod(cos)": lambda v, axis, keepdims: np.prod(np.cos(v), axis=axis, keepdims=keepdims),
}


# Hypothesis draws one seed per example and the program is built from it: derandomized
# generation then still spreads evenly over shapes, depths and steps (a failing
# example prints the program it ran).
def _constant_shape(rng, shape):
    """A shape that broadcasts against `shape`: a suffix with some sides set to 1, or one more axis."""
    if len(shape) < 3 and rng.random() < 0.3:
        return (int(rng.integers(1, 4)),) + shape
    suffix = shape[len(shape) - int(rng.integers(0, len(shape) + 1)):]
    return tuple(1 if rng.random() < 0.4 else s for s in suffix)


def _axes(rng, ndim):
    if ndim == 0 or rng.random() < 0.25:
        return None
    chosen = rng.permutation(ndim)[: rng.integers(1, ndim + 1)]
    chosen = [int(a) - ndim if rng.random() < 0.5 else int(a) for a in chosen]  # negative axes too
    return chosen[0] if len(chosen) == 1 and rng.random() < 0.5 else tuple(chosen)


def _basic_index(rng, shape):
    index = []
    for side in shape:
        kind = rng.choice(["all", "slice", "int", "none"])
        if kind == "int":
            index.append(int(rng.integers(-side, side)))
        elif kind == "slice":
            step = int(rng.choice([1, 2, -1, -2]))
            start = None if rng.random() < 0.4 else int(rng.integers(-side, side))
            stop = None if rng.random() < 0.4 else int(rng.integers(-side - 1, side + 1))
            index.append(slice(start, stop, step))
        elif kind == "none":
            index.extend([None, slice(None)])
        else:
            index.append(slice(None))
    if rng.random() < 0.3:
        index.insert(int(rng.integers(0, len(index) + 1)), Ellipsis)
    return tuple(index)


def _reshape_target(rng, shape):
    size = int(np.prod(shape, dtype=np.int64))
    options = [(-1,), (size, 1), (1, -1), shape[::-1]]
    if len(shape) >= 2:
        options.append((shape[0] * shape[1],) + shape[2:])
    return options[int(rng.integers(len(options)))]


def _step(rng, shape):
    """One program step valid for an input of `shape`: (label, function of v)."""
    kinds = ["unary", "unary", "binary", "binary", "reduce", "slice", "reshape", "transpose", "cumsum"]
    kind = rng.choice(kinds if shape else ["unary", "binary", "reduce", "reshape"])
    if kind == "unary":
        name = rng.choice(sorted(UNARY))
        return name, UNARY[name]
    if kind == "binary":
        name = rng.choice(sorted(BINARY))
        c_shape = _constant_shape(rng, shape)
        c = rng.choice([-1.0, 1.0], c_shape) * rng.uniform(0.5, 1.5, c_shape)
        if name == "power":
            c = rng.uniform(-1.5, 2.5, c_shape)
        return f"{name} const{c_shape}", lambda v, op=BINARY[name]: op(v, c)
    if kind == "reduce":
        name = rng.choice(sorted(REDUCTIONS))
        axis, keepdims = _axes(rng, len(shape)), bool(rng.random() < 0.5)
        return (f"{name}(axis={axis}, keepdims={keepdims})",
                lambda v, op=REDUCTIONS[name]: op(v, axis=axis, keepdims=keepdims))
    if kind == "slice":
        index = _basic_index(rng, shape)
        if 0 in np.empty(shape)[index].shape:
            index = (Ellipsis, slice(None, None, -1))
        return f"[{index}]", lambda v: v[index]
    if kind == "reshape":
        target = _reshape_target(rng, shape)
        return f"reshape{target}", lambda v: v.reshape(target)
    if kind == "transpose":
        perm = tuple(int(a) for a in rng.permutation(len(shape)))
        return f"transpose{perm}", lambda v: np.transpose(v, perm)
    axis = int(rng.integers(-len(shape), len(shape)))
    return f"cumsum(axis={axis})", lambda v: np.cumsum(v, axis=axis)


@st.composite
def programs(draw):
    """(f, x, batch_size): a random program of 1-4 steps on a random 0-d to 3-d input."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    shape = tuple(int(s) for s in rng.integers(1, 6, size=rng.integers(0, 4)))
    x = rng.uniform(-1.5, 1.5, shape)
    labels, fns, current = [], [], shape
    for _ in range(int(rng.integers(1, 5))):
        if len(current) > 3:
            break
        label, fn = _step(rng, current)
        labels.append(label)
        fns.append(fn)
        current = np.shape(fn(np.full(current, 0.5)))

    def f(v):
        for fn in fns:
            v = fn(v)
        return v

    f.__name__ = f"x{shape} -> " + " -> ".join(labels)
    return f, x, [1, 2, None][int(rng.integers(3))]


@SETTINGS
@given(programs())
def test_forward_and_reverse_agree_and_match_differences(program):
    f, x, batch_size = program
    y = np.asarray(f(x))
    Jf = jl.jacfwd(f, batch_size=batch_size)(x)
    Jr = jl.jacrev(f, batch_size=batch_size)(x)
    assert Jf.shape == Jr.shape == y.shape + x.shape, f.__name__
    scale = max(1.0, float(np.max(np.abs(Jf), initial=0.0)))
    np.testing.assert_allclose(Jf, Jr, rtol=1e-10, atol=1e-10 * scale, err_msg=f.__name__)
    assert_fd_close(Jf, central_differences(f, x), f.__name__)


@SETTINGS
@given(programs(), st.integers(1, 3))
def test_jvp_and_vjp_are_transposes(program, k):
    """<u, J v> = <J^T u, v> through the public jvp / vjp, k directions at once."""
    f, x, _ = program
    rng = np.random.default_rng(k)
    v = rng.standard_normal((k,) + x.shape)
    y, y_dot = jl.jvp(f, x, v)
    u = rng.standard_normal((k,) + np.shape(y))
    _, pullback = jl.vjp(f, x)
    x_bar = pullback(u)
    lhs = np.sum(u * y_dot, axis=tuple(range(1, u.ndim)))
    rhs = np.sum(x_bar * v, axis=tuple(range(1, v.ndim)))
    scale = np.linalg.norm(u.reshape(k, -1), axis=1) * np.linalg.norm(y_dot.reshape(k, -1), axis=1)
    np.testing.assert_array_less(np.abs(lhs - rhs), 1e-10 * np.maximum(scale, 1e-300) + 1e-300,
                                 err_msg=f.__name__)


@SETTINGS
@given(programs(), st.integers(0, 2 ** 32 - 1))
def test_auto_reuses_a_prediction_only_where_it_is_exact(program, seed):
    """Probing at x, then at x2 of the same shape full of ties and zeros, reuses x's costs
    only when they are x2's own: the reused prediction equals a fresh one."""
    from jacobian_lab.harness import prepare

    f, x, _ = program
    x2 = np.random.default_rng(seed).choice([-1.0, 0.0, 0.5], x.shape)
    jl.prediction.clear_cache()
    for point in (x, x2):
        reused = jl.prediction.probe(*prepare(f, point), reuse=True)[0]
        assert reused == jl.predict(f, point), f.__name__


@SETTINGS
@given(programs(), st.integers(1, 3))
def test_replaying_the_tape_forward_equals_a_forward_pass(program, k):
    """pullback.push (auto mode's forward order) gives what the dual-number engine gives."""
    f, x, _ = program
    t = np.random.default_rng(k).standard_normal((k,) + x.shape)
    y, y_dot = jl.engines.get("forward").jvp(f, x, t)
    y_tape, pullback = jl.engines.get("reverse").vjp(f, x)
    y_replayed, y_dot_replayed = pullback.push(t)
    np.testing.assert_array_equal(y_replayed, y_tape)
    np.testing.assert_allclose(y_dot_replayed, y_dot, rtol=1e-12, atol=1e-12, err_msg=f.__name__)
