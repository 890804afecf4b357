"""Generate the teaching notebooks, execute them in place and store their outputs.

    python notebooks/build.py            # write and execute every notebook
    python notebooks/build.py 01 03      # only the notebooks whose names start with these
    python notebooks/build.py --no-exec  # write the notebooks without executing them

Each notebook is a list of markdown and code cells defined below, so a review
reads (and diffs) plain Python. Code cells tagged "reproducible" print exact
counts only; the test suite re-executes every notebook and compares their text
output with the stored one.
"""
from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
MAX_BYTES = 2 * 1024 * 1024

SETUP = """\
%matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import jacobian_lab as jl

plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.4, 4.0), "axes.grid": True, "grid.alpha": 0.3})
np.set_printoptions(precision=4, suppress=True, linewidth=100)
rng = np.random.default_rng(0)"""


def md(text: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(source: str, *tags: str):
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


REPRO = "reproducible"


# --------------------------------------------------------------------------- 01

def notebook_01():
    return [
        md(r"""
        # 1 · Jacobians and the chain rule

        A function $F:\mathbb{R}^n \to \mathbb{R}^m$ has an $m \times n$ Jacobian,
        $J_{ij} = \partial F_i / \partial x_j$. This notebook builds Jacobians with the two
        engines of `jacobian_lab` — forward accumulation (dual numbers, Jacobian-vector
        products) and reverse accumulation (a tape, vector-Jacobian products) — and counts the
        floating-point work that each order of the chain rule executes.
        """),
        code(SETUP + """
from jacobian_lab.accounting import counting
from jacobian_lab.rules.linalg import matmul"""),

        md(r"""
        ## The Jacobian of a multivariate function

        A small example, $g:\mathbb{R}^3 \to \mathbb{R}^2$,
        $g(x) = (x_0 x_1,\ \sin x_0 + x_2^2)$, with the Jacobian written by hand:

        $$J_g = \begin{pmatrix} x_1 & x_0 & 0 \\ \cos x_0 & 0 & 2x_2 \end{pmatrix}.$$

        `jl.jacfwd` and `jl.jacrev` build it from the NumPy code alone.
        """),
        code("""
        def g(x):
            return np.stack([x[0] * x[1], np.sin(x[0]) + x[2] ** 2])

        x3 = rng.normal(size=3)
        J_hand = np.array([[x3[1], x3[0], 0.0],
                           [np.cos(x3[0]), 0.0, 2 * x3[2]]])
        J_fwd, J_rev = jl.jacfwd(g)(x3), jl.jacrev(g)(x3)
        assert np.allclose(J_fwd, J_hand) and np.allclose(J_rev, J_hand)
        print("x =", x3)
        print("J shape (m, n) =", J_fwd.shape)
        print(J_fwd)"""),

        md(r"""
        ## Columns from JVPs, rows from VJPs

        `jl.jvp(g, x, v)` evaluates $g$ and the product $J v$ in one forward pass; with the
        one-hot seed $v = e_i$ that product is column $i$ of $J$. `jl.vjp(g, x)` records one
        tape and returns a pullback $u \mapsto u^\top J$; with $u = e_j$ it gives row $j$.
        Forward accumulation therefore needs one tangent seed per input, reverse one cotangent
        seed per output. A *pass* carries a batch of seeds through $g$ (forward) or back
        through the tape (reverse, a sweep): below, each seed has a pass of its own; vector
        mode, further down, carries many in one.
        """),
        code("""
        n_in, m_out = x3.size, 2
        columns = []
        for i, e in enumerate(np.eye(n_in)):
            _, column = jl.jvp(g, x3, e)
            print(f"JVP with e_{i}: column {i} = {column}")
            columns.append(column)

        _, pullback = jl.vjp(g, x3)                 # one tape, reused by every sweep
        rows = []
        for j, e in enumerate(np.eye(m_out)):
            row = pullback(e)
            print(f"VJP with e_{j}: row {j}    = {row}")
            rows.append(row)

        assert np.allclose(np.column_stack(columns), J_hand) and np.allclose(np.vstack(rows), J_hand)
        print(f"{len(columns)} JVPs gave the {len(columns)} columns, {len(rows)} VJPs gave the {len(rows)} rows")"""),

        md(r"""
        ## $F = D \circ C \circ B \circ A$

        The tutorial function: $A(x) = x^2$, $B = \exp$, $C = \sin$, $D = \text{sum}$, so
        $F(x) = \sum_i \sin(\exp(x_i^2))$. Each primitive becomes its own stage
        ($D$ keeps a length-1 output so that its Jacobian is a $1 \times n$ matrix), and $n$ is
        small enough to read the matrices.
        """),
        code("""
        def A(x): return x ** 2
        def B(a): return np.exp(a)
        def C(b): return np.sin(b)
        def D(c): return np.sum(c, keepdims=True)

        def F(x):
            return np.sum(np.sin(np.exp(x ** 2)))

        n = 4
        x = rng.uniform(-1.0, 1.0, n)
        a, b, c = A(x), B(A(x)), C(B(A(x)))
        assert np.isclose(D(c)[0], F(x))
        print("n =", n)
        print("x =", x)
        print("F(x) =", F(x))"""),

        md(r"""
        Each local Jacobian comes from an engine applied to one stage at that stage's own
        input: `jacfwd` for $A$, $B$, $C$ (as many outputs as inputs) and `jacrev` for $D$
        (one output). $A$, $B$, $C$ act elementwise, so their Jacobians are diagonal:
        $J_A = \mathrm{diag}(2x)$, $J_B = \mathrm{diag}(e^{a})$, $J_C = \mathrm{diag}(\cos b)$;
        $J_D$ is a row of ones. The cell asserts each of these formulas.
        """),
        code("""
        J_A = jl.jacfwd(A)(x)
        J_B = jl.jacfwd(B)(a)
        J_C = jl.jacfwd(C)(b)
        J_D = jl.jacrev(D)(c)

        assert np.allclose(J_A, np.diag(2 * x))
        assert np.allclose(J_B, np.diag(np.exp(a)))
        assert np.allclose(J_C, np.diag(np.cos(b)))
        assert np.array_equal(J_D, np.ones((1, n)))
        for name, J in [("J_A", J_A), ("J_B", J_B), ("J_C", J_C), ("J_D", J_D)]:
            print(f"{name}  {J.shape[0]}x{J.shape[1]}\\n{J + 0.0}\\n")   # + 0.0 prints -0.0 as 0.0"""),

        md(r"""
        The chain rule: $J_F = J_D\, J_C\, J_B\, J_A$. The product of the local Jacobians
        equals what either engine builds for $F$ directly.
        """),
        code("""
        J_product = J_D @ J_C @ J_B @ J_A
        J_F_rev, J_F_fwd = jl.jacrev(F)(x), jl.jacfwd(F)(x)
        assert np.allclose(J_product[0], J_F_rev) and np.allclose(J_product[0], J_F_fwd)
        print("J_D J_C J_B J_A =", J_product[0])
        print("jl.jacrev(F)(x) =", J_F_rev)
        print("jl.jacfwd(F)(x) =", J_F_fwd)
        print(f"largest difference: {np.max(np.abs(J_product[0] - J_F_rev)):.1e}")"""),

        md(r"""
        ## The order of the product

        Matrix multiplication is associative, so every bracketing gives the same $J_F$, but
        not the same work: an $(r \times s)$ by $(s \times t)$ product is counted as $2rst$
        FLOPs, one multiply and one add per term. That is the usual multiply-add convention,
        and the one the toolkit counts; strictly, each of the $rt$ entries sums $s$ products
        with $s - 1$ additions, $rt(2s - 1)$ in all.

        * **Forward accumulation** brackets right to left, $J_D\,(J_C\,(J_B\,J_A))$: it starts
          at the input, and every step multiplies a matrix by a matrix.
        * **Reverse accumulation** brackets left to right, $((J_D\,J_C)\,J_B)\,J_A$: it starts
          at the scalar output, and every step multiplies a row vector by a matrix.

        `jl.chain.plan` prices both from the widths $[n, n, n, n, 1]$ (the input and the
        outputs of $A$, $B$, $C$, $D$).
        """),
        code("""
        plan = jl.chain.plan([n, n, n, n, 1])
        print("stages numbered from the input: J1 = J_A, J2 = J_B, J3 = J_C, J4 = J_D\\n")
        print(plan.table())
        print(f"\\nforward / reverse = {plan.forward_flops / plan.reverse_flops:.0f}x")""", REPRO),

        md(r"""
        The same products, executed one by one with the package's `matmul` primitive inside
        `counting()`: the counter records the work that actually ran.
        """),
        code("""
        def counted_matmul(left, right):
            with counting() as counter:
                out = matmul(left, right)
            return out, counter.cost("primal").flops

        def shape(M):
            return f"{M.shape[0]}x{M.shape[1]}"

        print("forward, right to left:")
        M, forward_total = J_A, 0
        for name, J in [("J_B", J_B), ("J_C", J_C), ("J_D", J_D)]:
            product, flops = counted_matmul(J, M)
            print(f"  {name} ({shape(J)}) @ ({shape(M)}) -> {shape(product)}: {flops:4d} FLOPs")
            M, forward_total = product, forward_total + flops
        forward_result = M

        print("reverse, left to right:")
        M, reverse_total = J_D, 0
        for name, J in [("J_C", J_C), ("J_B", J_B), ("J_A", J_A)]:
            product, flops = counted_matmul(M, J)
            print(f"  ({shape(M)}) @ {name} ({shape(J)}) -> {shape(product)}: {flops:4d} FLOPs")
            M, reverse_total = product, reverse_total + flops
        reverse_result = M

        assert np.allclose(forward_result, reverse_result)
        assert (forward_total, reverse_total) == (plan.forward_flops, plan.reverse_flops)
        print(f"counted: forward {forward_total}, reverse {reverse_total} "
              f"(plan: {plan.forward_flops}, {plan.reverse_flops})")""", REPRO),

        md(r"""
        The engines run the same two orders, with one extra factor. Forward mode pushes the
        $n$ one-hot seeds — the identity matrix — from the input side,
        $J_D\,(J_C\,(J_B\,(J_A\,I)))$; reverse mode pulls the cotangent $1$ from the output
        side, $(((1 \cdot J_D)\,J_C)\,J_B)\,J_A$. They never form the diagonal matrices: an
        elementwise rule multiplies by the diagonal, one FLOP per entry. A sum of $n$ entries
        is counted as the $n - 1$ additions it runs, so the product with $J_D$ costs $n - 1$
        per seed here, where `matmul` counted $2n$ per column under the multiply-add
        convention.

        `jl.predict` splits the counted work into a part paid per seed and a part that does
        not depend on the number of seeds: the factors the rules read, $2x$ ($n$ flops) and
        $\cos b$ ($n$ transcendentals; $e^a$ is $b$ itself). Forward mode computes them once
        per pass; reverse mode once, when it stages its rules on the tape, for all its sweeps.
        """),
        code("""
        p = jl.predict(F, x)
        print(f"one evaluation of F:           {p.primal}")
        print(f"forward, per tangent seed:     {p.tangent.per_seed}")
        print(f"reverse, per cotangent seed:   {p.cotangent.per_seed}")
        print(f"forward, once per pass:        {p.tangent.fixed}")
        print(f"reverse, once per tape:        {p.staging}")
        assert p.tangent.fixed == p.staging == jl.Cost(n, n)    # the factors 2x and cos(b)
        # per seed: one product with each of the diagonals 2x, exp(a), cos(b) (n FLOPs each);
        # forward also sums the n tangent entries (the product with J_D), reverse broadcasts (free)
        assert p.tangent.per_seed.flops == 3 * n + (n - 1)
        assert p.cotangent.per_seed.flops == 3 * n
        print(f"  = 3 diagonal products of {n} entries (+ a sum of {n} entries in forward mode): "
              f"{3 * n} + {n - 1} and {3 * n}")
        print(f"dense products of the same chain (above): {plan.forward_flops} and {plan.reverse_flops}")""", REPRO),

        md(r"""
        ## One VJP or $n$ JVPs

        $F$ is scalar, so its Jacobian is a single row: the gradient. One VJP with the
        cotangent $1$ returns all of it. A JVP returns one number, $\nabla F \cdot e_i$, so
        forward mode needs $n$ of them — each of which evaluates $F$ again.
        """),
        code("""
        with counting() as reverse_count:
            _, pullback = jl.vjp(F, x)
            gradient = pullback(np.ones(()))

        with counting() as forward_count:
            entries = [jl.jvp(F, x, e)[1] for e in np.eye(n)]

        assert np.allclose(gradient, entries)
        f_cost = jl.count_flops(F, x)
        for label, counter in [("reverse, 1 VJP", reverse_count), (f"forward, {n} JVPs", forward_count)]:
            costs = counter.costs()
            evaluations = costs["primal"].flops // f_cost.flops
            print(f"{label:<15} {evaluations} evaluation(s) of F, primal {costs['primal']}, "
                  f"derivative {costs['tangent'] + costs['cotangent']}, total {counter.total().total():.0f}")
        print("gradient:", gradient)""", REPRO),

        md(r"""
        Vector mode pushes all $n$ seeds through one evaluation of $F$ (the tangent seeds
        `np.eye(n)`, of shape $(n, n)$, in one pass): the primal work and the factors are paid
        once, the tangent work per seed still grows with $n$. In flops, with $n = 4$: the
        reverse derivative above is $4 + 12$, the four one-seed passes $4 \cdot (4 + 15)$,
        and this one pass $4 + 4 \cdot 15$.
        """),
        code("""
        with counting() as vector_count:
            _, tangents = jl.jvp(F, x, np.eye(n))
        assert np.allclose(tangents, gradient)
        print(f"forward, {n} seeds in one pass: primal {vector_count.cost('primal')}, "
              f"tangent {vector_count.cost('tangent')}")""", REPRO),

        md(r"""
        ## The chain as a program

        `jl.jit` compiles a Jacobian function into the straight-line NumPy code it replays,
        keeping only the work that depends on $x$ and reaches the result. For the gradient of
        $F$, reading that program top to bottom is reading the reverse product left to right:
        the primal pass computes $a = A(x)$ and $b = B(a)$ (the values of $C$ and $D$ are never
        read, only their local derivatives), then the cotangent of $D$ (ones: a constant, `c0`)
        meets $C' = \cos(b)$, then $B' = \exp(a) = b$, then $A' = 2x$. Every factor is
        diagonal, so each product is an elementwise multiply.
        """),
        code("""
        program = jl.jit(jl.grad(F)).program(x)
        print(program.source)
        print(f"{program.mode} program: {program.cost}; the reverse engine counted {reverse_count.total()}")"""),

        md(r"""
        ## The cost over $n$

        The same comparison as $n$ grows. `jl.predict(F, x)` traces $F$ once and returns the
        exact count of every schedule without building the Jacobian. The counts below are
        FLOPs + transcendentals ($\exp$, $\sin$, $\cos$ each count as one operation). First, the
        prediction equals what `jl.measure` counts when it really builds the Jacobian:
        """),
        code("""
        SCHEDULES = [("forward, vector", "forward", None),
                     ("forward, 1 seed/pass", "forward", 1),
                     ("reverse", "reverse", None)]

        for size in (10, 300):
            xs = rng.uniform(-1.0, 1.0, size)
            prediction = jl.predict(F, xs)
            for label, mode, batch in SCHEDULES:
                measured = jl.measure(F, xs, mode=mode, batch_size=batch, repeat=1)
                predicted = prediction.total(mode, batch)
                assert measured.total == predicted, (size, label)
                assert np.allclose(measured.jacobian, jl.jacrev(F)(xs))
                print(f"n = {size:4d}  {label:21s} measured {measured.total.total():>12,.0f}"
                      f"  predicted {predicted.total():>12,.0f}")""", REPRO),
        code("""
        ns = np.unique(np.geomspace(10, 3000, 18).astype(int))
        curves = {label: [] for label, _, _ in SCHEDULES}
        one_evaluation = []
        for size in ns:
            prediction = jl.predict(F, rng.uniform(-1.0, 1.0, size))
            one_evaluation.append(prediction.primal.total())
            for label, mode, batch in SCHEDULES:
                curves[label].append(prediction.total(mode, batch).total())

        fig, ax = plt.subplots()
        for (label, values), marker in zip(curves.items(), "os^"):
            ax.loglog(ns, values, marker + "-", ms=4, label=label)
        ax.loglog(ns, one_evaluation, "k--", lw=1, label="one evaluation of F")
        ax.set_xlabel("n (inputs)")
        ax.set_ylabel("FLOPs + transcendentals")
        ax.set_title("Exact cost (jl.predict) of the full Jacobian of F")
        ax.legend()
        plt.show()"""),
        code("""
        fwd, fwd1, rev = (np.array(curves[label]) for label, _, _ in SCHEDULES)
        f_evals = np.array(one_evaluation)
        print(f"n = {ns[0]}: forward (vector) / reverse = {fwd[0] / rev[0]:.1f}x")
        print(f"n = {ns[-1]}: forward (vector) / reverse = {fwd[-1] / rev[-1]:,.0f}x, "
              f"forward (1 seed/pass) / reverse = {fwd1[-1] / rev[-1]:,.0f}x")
        print(f"reverse / one evaluation of F, over all n: {np.min(rev / f_evals):.3f} to {np.max(rev / f_evals):.3f}")
        slope = np.polyfit(np.log(ns), np.log(fwd / rev), 1)[0]
        print(f"slope of log(forward / reverse) against log(n): {slope:.2f}")""", REPRO),
        md(r"""
        Reverse mode costs about the same small multiple of one evaluation of $F$ at every
        $n$ (the range above), the cheap-gradient principle; the forward-to-reverse ratio grows linearly in $n$ (the
        slope above). Notebook 2 looks at functions with more than one output, where the
        answer depends on both $n$ and $m$.
        """),
    ]


# --------------------------------------------------------------------------- 02

def notebook_02():
    return [
        md(r"""
        # 2 · Forward vs reverse: where the crossover lies

        For an $m \times n$ Jacobian, forward accumulation needs one tangent seed per input and
        reverse accumulation one cotangent seed per output. This notebook measures what that
        means on the built-in problems: where the crossover in $(n, m)$ lies, what vector mode
        saves, what the tape costs in memory, and what `mode="auto"` picks.
        """),
        code(SETUP),

        md(r"""
        ## The built-in problems

        `jl.problems` holds functions whose shapes favour one order, the other, or neither;
        each states which order should win and why. At small sizes: the exact FLOPs +
        transcendentals of the full Jacobian by vector-mode forward and batched reverse
        accumulation (from `jl.predict`), and the order `mode="auto"` picks. The cell asserts
        that the pick agrees with the stated winner and that the `auto` Jacobian matches the
        problem's exact one.
        """),
        code("""
        SMALL = {"seed": dict(n=200), "mlp_loss": dict(n=220), "curve": dict(m=200), "dense": dict(n=100),
                 "bratu": dict(n=200), "wide_to_tall": dict(n=200, m=200), "tall_to_wide": dict(n=10, m=10)}

        header = f"{'problem':<13}{'n':>5}{'m':>5}  {'expected':<9}{'forward':>12}{'reverse':>12}{'fwd/rev':>9}  auto"
        print(header)
        print("-" * len(header))
        for name in jl.problems.names():
            problem = jl.problems.get(name, **SMALL[name])
            prediction = jl.predict(problem.f, problem.x)
            forward, reverse = prediction.total("forward").total(), prediction.total("reverse").total()
            choice, _ = prediction.choose()
            if problem.winner != "either":
                assert choice == problem.winner, name
            J = jl.jacobian(problem.f, problem.x, mode="auto")
            assert np.allclose(J, problem.jacobian_exact(problem.x)), name
            print(f"{name:<13}{problem.n:>5}{problem.m:>5}  {problem.winner:<9}{forward:>12,.0f}{reverse:>12,.0f}"
                  f"{forward / reverse:>9.3g}  {choice}")""", REPRO),
        code("""
        for name in jl.problems.names():
            problem = jl.problems.get(name, **SMALL[name])
            print(f"{name}: {problem.summary}\\n    {problem.why}")""", REPRO),

        md(r"""
        `jl.compare` builds one Jacobian in every schedule and reports the counted work per
        phase, wall time and memory. For `curve` (four parameters, many samples):
        """),
        code("""
        problem = jl.problems.get("curve", m=200)
        comparison = jl.compare(problem.f, problem.x)
        print(comparison.table())"""),
        md(r"""
        The `jit` row replays `jl.jit(jl.jacobian(f))`, the Jacobian compiled into a
        straight-line NumPy program. It runs once through $f$, keeps only the work that
        depends on $x$ (the seeds pushed through the constant sample times are computed once, when it
        is compiled) and counts what the program runs. The `sparse` row pushes one seed per
        color of the Jacobian's pattern (notebook 05); `curve`'s four columns share every
        row, so it takes four. The verdict compares the two orders as the engines run them.
        """),

        md(r"""
        ## The crossover in $(n, m)$

        `wide_to_tall` maps $x \in \mathbb{R}^n$ through a 10-wide layer to
        $y \in \mathbb{R}^m$, $y = \tanh(B \tanh(A x))$. With $n$ fixed and $m$ swept, reverse
        mode (one cotangent seed per output) wins for small $m$, forward mode (one tangent seed
        per input) for large $m$. The crossover $m^*$ below is the smallest $m$ at which
        forward costs no more than reverse, found by bisection on exact predictions; it is
        computed for the batched schedules and for one seed per pass.
        """),
        code("""
        N_FIXED = 200
        SCHEDULES = [("forward, vector", "forward", None), ("forward, 1 seed/pass", "forward", 1),
                     ("reverse, batched", "reverse", None), ("reverse, 1 seed/sweep", "reverse", 1)]

        def costs(n, m):
            problem = jl.problems.get("wide_to_tall", n=n, m=m)
            prediction = jl.predict(problem.f, problem.x)
            return {label: prediction.total(mode, batch).total() for label, mode, batch in SCHEDULES}

        def crossover(n, forward_label, reverse_label, lo=1, hi=5000):
            \"\"\"Smallest m with forward <= reverse (forward's advantage grows with m).\"\"\"
            def cheaper(m):
                c = costs(n, m)
                return c[forward_label] <= c[reverse_label]

            assert not cheaper(lo) and cheaper(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if cheaper(mid) else (mid, hi)
            return hi

        m_vector = crossover(N_FIXED, "forward, vector", "reverse, batched")
        m_scalar = crossover(N_FIXED, "forward, 1 seed/pass", "reverse, 1 seed/sweep")
        print(f"n = {N_FIXED}: batched schedules cross at m* = {m_vector}, "
              f"one-seed schedules at m* = {m_scalar}")""", REPRO),
        code("""
        ms = np.unique(np.geomspace(10, 3000, 30).astype(int))
        sweep = [costs(N_FIXED, m) for m in ms]

        fig, ax = plt.subplots()
        same = all(c["reverse, batched"] == c["reverse, 1 seed/sweep"] for c in sweep)
        styles = {"forward, vector": ("C0", "-", ""), "forward, 1 seed/pass": ("C0", "--", ""),
                  "reverse, batched": ("C3", "-", ""), "reverse, 1 seed/sweep": ("C3", "none", "x")}
        for label, (color, ls, marker) in styles.items():
            text = label + (" (= batched)" if same and label == "reverse, 1 seed/sweep" else "")
            ax.loglog(ms, [c[label] for c in sweep], color=color, ls=ls, marker=marker, ms=5, label=text)
        for m_star, which, ls, dx, ha in [(m_vector, "batched", "-", -4, "right"),
                                          (m_scalar, "one seed", "--", 4, "left")]:
            ax.axvline(m_star, color="k", ls=ls, lw=0.8)
            ax.annotate(f"m* = {m_star} ({which})", (m_star, ax.get_ylim()[1]), xytext=(dx, -14),
                        textcoords="offset points", fontsize=9, ha=ha)
        ax.set_xlabel("m (outputs)")
        ax.set_ylabel("FLOPs + transcendentals")
        ax.set_title(f"wide_to_tall, n = {N_FIXED}: full Jacobian cost as m grows")
        ax.legend(loc="lower right", fontsize=9)
        plt.show()
        print("reverse: one cotangent per sweep costs the same FLOPs as batched sweeps at every m:", same)"""),

        md(r"""
        Forward mode in scalar mode evaluates $f$ once per pass, so it crosses later: the
        two crossovers printed above differ. Over a grid of $(n, m)$ the batched schedules give the map below: the colour is
        $\log_{10}$(forward / reverse), the black contour is where the two are equal.
        """),
        code("""
        grid = np.unique(np.geomspace(10, 2000, 14).astype(int))
        log_ratio = np.array([[np.log10(c["forward, vector"] / c["reverse, batched"])
                               for c in (costs(n, m) for m in grid)] for n in grid])   # rows: n

        fig, ax = plt.subplots(figsize=(5.6, 4.6))
        limit = np.abs(log_ratio).max()
        mesh = ax.pcolormesh(grid, grid, log_ratio, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="nearest")
        ax.contour(grid, grid, log_ratio, levels=[0.0], colors="k", linewidths=1.2)
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel("m (outputs)"); ax.set_ylabel("n (inputs)")
        ax.set_title("wide_to_tall: log10(forward / reverse)")
        fig.colorbar(mesh, ax=ax, label="red: reverse cheaper, blue: forward cheaper")
        plt.show()"""),
        code("""
        n_grid, m_grid = np.meshgrid(grid, grid, indexing="ij")
        forward_cheaper = log_ratio < 0
        print(f"{grid.size * grid.size} grid points; forward strictly cheaper at {forward_cheaper.sum()}, "
              f"reverse strictly cheaper at {(log_ratio > 0).sum()}, equal at {(log_ratio == 0).sum()}")
        print("forward strictly cheaper exactly where m > n:", bool(np.array_equal(forward_cheaper, m_grid > n_grid)))
        print("equal anywhere off the diagonal m == n:", bool((log_ratio[m_grid != n_grid] == 0).any()))
        for n, ratio in zip(grid, 10 ** np.diag(log_ratio)):
            square = jl.problems.get("wide_to_tall", n=n, m=n)
            passes = jl.predict(square.f, square.x).schedule("forward")[1]
            print(f"m = n = {n:>4}: forward / reverse = {ratio:.4f}, {passes} forward pass{'es' if passes > 1 else ''}")""", REPRO),
        md(r"""
        On the diagonal, in one pass, the two orders do the same derivative work. Where forward
        is dearer there, vector mode has split the $n$ seeds into several passes (each pass's
        tangent arrays are kept about the size of a core's L2 cache), and each extra pass
        evaluates $f$ again and rebuilds the factors its tangent rules read (as one seed per
        pass does in the next section): a fraction of a percent.
        """),

        md(r"""
        ## Scalar vs vector mode: recomputing the primal

        A forward pass carries the primal values along with the tangents. With one seed per
        pass (scalar mode) $f$ is evaluated once per input; vector mode pushes many seeds
        through one evaluation. Reverse mode records $f$ once on its tape, and every sweep
        reuses it. `tall_to_wide` ($n = m = 10$ through a 1000-wide layer) has an expensive
        primal, which makes the difference visible:
        """),
        code("""
        problem = jl.problems.get("tall_to_wide")
        f_cost = jl.count_flops(problem.f, problem.x)
        print(f"{problem.summary}\\none evaluation: {f_cost}\\n")
        measurements = {label: jl.measure(problem.f, problem.x, mode=mode, batch_size=batch, repeat=1)
                        for label, mode, batch in SCHEDULES}
        print(f"{'schedule':<23}{'passes':>7}{'evaluations':>13}{'primal':>12}{'derivative':>12}{'total':>12}")
        for label, m in measurements.items():
            evaluations = m.cost["primal"].total() / f_cost.total()
            derivative = (m.cost["tangent"] + m.cost["cotangent"]).total()
            print(f"{label:<23}{m.passes:>7}{evaluations:>13.0f}{m.cost['primal'].total():>12,.0f}"
                  f"{derivative:>12,.0f}{m.total.total():>12,.0f}")
        assert measurements["forward, 1 seed/pass"].cost["primal"] == problem.n * f_cost
        assert all(measurements[label].cost["primal"] == f_cost
                   for label in ("forward, vector", "reverse, batched", "reverse, 1 seed/sweep"))
        fixed = jl.predict(problem.f, problem.x).tangent.fixed
        extra = measurements["forward, 1 seed/pass"].cost["tangent"] - measurements["forward, vector"].cost["tangent"]
        assert extra == (problem.n - 1) * fixed
        print(f"\\nforward 1 seed/pass also rebuilds the primal-only factors of the tangent rules in each of its "
              f"{problem.n} passes: {problem.n - 1} x {fixed} more tangent work")""", REPRO),
        code("""
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        labels = list(measurements)
        primal = np.array([measurements[l].cost["primal"].total() for l in labels])
        derivative = np.array([(measurements[l].cost["tangent"] + measurements[l].cost["cotangent"]).total()
                               for l in labels])
        ax.barh(labels, primal, color="0.6", label="primal (evaluating f)")
        ax.barh(labels, derivative, left=primal, color="C0", label="derivative rules")
        ax.invert_yaxis()
        ax.set_xlabel("thousand FLOPs + transcendentals")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}"))
        ax.set_title("tall_to_wide: where the work goes")
        ax.legend(fontsize=9)
        plt.show()"""),

        md(r"""
        ## Memory: the tape vs the tangents

        Reverse mode pays for its cheap gradient in memory: the tape keeps the residuals of
        every operation until the backward sweep. Forward mode keeps only the current primal
        and tangent values — but in vector mode a tangent is as many seeds wide as the pass.
        A deep scalar function, $L$ repeated layers $x \leftarrow \tanh(1.5x) + 0.1x$ on $n$
        inputs, then a sum, shows the trade as $L$ grows. `tape_bytes` is exact (the residuals
        on the tape); `peak_bytes` is the peak memory traced while building the Jacobian.
        """),
        code("""
        def deep(L):
            def f(x):
                for _ in range(L):
                    x = np.tanh(1.5 * x) + 0.1 * x
                return np.sum(x)
            return f

        n_deep = 500
        x_deep = rng.standard_normal(n_deep)
        depths = [1, 2, 4, 8, 16, 32]
        jl.measure(deep(1), x_deep, mode="forward", batch_size=1, repeat=1)   # warm-up: first-call allocations
        memory = {L: {label: jl.measure(deep(L), x_deep, mode=mode, batch_size=batch, repeat=1)
                      for label, mode, batch in SCHEDULES[:3]} for L in depths}
        tape = np.array([jl.predict(deep(L), x_deep).tape_bytes for L in depths])
        assert all(memory[L]["reverse, batched"].tape_bytes == t for L, t in zip(depths, tape))
        per_layer = np.diff(tape) / np.diff(depths)
        assert np.all(per_layer == per_layer[0])
        print(f"n = {n_deep}: the tape grows by {per_layer[0]:,.0f} bytes per layer "
              f"= {per_layer[0] / (8 * n_deep):.0f} arrays of n float64 values")
        print(f"tape at L = {depths[0]}: {tape[0]:,} bytes, at L = {depths[-1]}: {tape[-1]:,} bytes")""", REPRO),
        code("""
        one_tangent = n_deep * n_deep * 8
        vector_peaks = np.array([memory[L]["forward, vector"].peak_bytes for L in depths])
        single_peaks = np.array([memory[L]["forward, 1 seed/pass"].peak_bytes for L in depths])
        reverse_peaks = np.array([memory[L]["reverse, batched"].peak_bytes for L in depths])
        assert np.all(single_peaks < reverse_peaks) and np.all(single_peaks < vector_peaks)
        print(f"one n x n tangent array: {one_tangent / 1024:,.0f} KiB; forward vector peak: "
              f"{vector_peaks.min() / one_tangent:.1f} to {vector_peaks.max() / one_tangent:.1f} of them")
        print(f"forward peaks, largest / smallest over L: 1 seed/pass {single_peaks.max() / single_peaks.min():.2f}, "
              f"vector {vector_peaks.max() / vector_peaks.min():.2f}; reverse peak: "
              f"{reverse_peaks.max() / reverse_peaks.min():.1f}\\n")
        print(f"{'L':>3}{'tape KiB':>10}{'reverse peak':>14}{'fwd 1-seed peak':>17}{'fwd vector peak':>17}   (KiB)")
        for L, t in zip(depths, tape):
            peaks = {label: memory[L][label].peak_bytes / 1024 for label in memory[L]}
            print(f"{L:>3}{t / 1024:>10.1f}{peaks['reverse, batched']:>14.1f}{peaks['forward, 1 seed/pass']:>17.1f}"
                  f"{peaks['forward, vector']:>17.1f}")

        fig, ax = plt.subplots()
        ax.loglog(depths, tape / 1024, "C3o-", label="reverse: tape")
        for label, style in [("reverse, batched", "C3s--"), ("forward, 1 seed/pass", "C0o--"),
                             ("forward, vector", "C0^-")]:
            ax.loglog(depths, [memory[L][label].peak_bytes / 1024 for L in depths], style, label=f"{label}: peak")
        ax.set_xticks(depths, [str(L) for L in depths])
        ax.minorticks_off()
        ax.set_xlabel("L (layers)")
        ax.set_ylabel("KiB")
        ax.set_title(f"Memory of the full Jacobian (gradient), n = {n_deep}")
        ax.legend(fontsize=9)
        plt.show()"""),
        md(r"""
        The tape grows linearly with the depth of $f$, and the reverse peak with it. Forward
        mode's peak is flat from $L = 2$ on (its ratio above comes from the step from $L = 1$
        to $2$) and is set by the number of seeds per pass: vector mode holds a few
        $n \times n$ tangent arrays, one seed per pass holds the least, at the price of $n$
        evaluations of $f$.
        """),

        md(r"""
        ## What `auto` picks, and why

        `mode="auto"` asks `jl.predict` for the exact cost of both orders and takes the
        cheaper one; on a tie it takes forward. Inside `counting()`, a first `auto` call also
        counts the probes that chose the order; a second call counts the chosen order alone.
        The reason it gives for each problem at its default size:
        """),
        code("""
        for name in jl.problems.names():
            problem = jl.problems.get(name)
            prediction = jl.predict(problem.f, problem.x)
            mode, reason = prediction.choose()
            ratio = prediction.total("forward").total() / prediction.total("reverse").total()
            print(f"{name:<13} R^{problem.n} -> R^{problem.m}: {mode}\\n    {reason}\\n    forward / reverse = {ratio:.6g}")""", REPRO),
    ]


# --------------------------------------------------------------------------- 03

def notebook_03():
    return [
        md(r"""
        # 3 · Training a classifier with reverse mode

        Training a network needs the gradient of one scalar loss with respect to all
        parameters: a Jacobian with one row. This notebook trains a small MLP on the two-moons
        data with `jl.grad` and plain gradient descent, then counts what each gradient cost in
        reverse mode and what forward mode would have needed.
        """),
        code(SETUP),

        md(r"""
        ## The data: two moons

        Two interleaved half circles with Gaussian noise, labels $\pm 1$, made with NumPy.
        """),
        code("""
        N_PER_CLASS, NOISE = 100, 0.15
        angle = rng.uniform(0.0, np.pi, (2, N_PER_CLASS))
        upper = np.column_stack([np.cos(angle[0]), np.sin(angle[0])])
        lower = np.column_stack([1.0 - np.cos(angle[1]), 0.5 - np.sin(angle[1])])
        X = np.vstack([upper, lower]) + NOISE * rng.standard_normal((2 * N_PER_CLASS, 2))
        y = np.concatenate([np.ones(N_PER_CLASS), -np.ones(N_PER_CLASS)])
        print("X:", X.shape, " labels:", {int(v): int(np.sum(y == v)) for v in (1, -1)})

        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        ax.scatter(*X[y > 0].T, s=14, c="C0", label="+1")
        ax.scatter(*X[y < 0].T, s=14, c="C3", label="-1")
        ax.set_xlabel("$x_1$"); ax.set_ylabel("$x_2$")
        ax.set_aspect("equal"); ax.legend(); ax.set_title("two moons")
        plt.show()"""),

        md(r"""
        ## The model and the loss

        An MLP $2 \to 16 \to 16 \to 1$ with $\tanh$ hidden layers, its parameters in a dict.
        The loss is the mean logistic loss $\log(1 + e^{-y s})$ of the score $s$, written in a
        form that cannot overflow: $\text{softplus}(z) = \max(z, 0) + \log(1 + e^{-|z|})$.
        Everything is plain NumPy; `jl.grad(loss)` returns a dict shaped like the parameters.
        """),
        code("""
        SIZES = [2, 16, 16, 1]

        def init(rng):
            params = {}
            for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
                params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
                params[f"b{i}"] = np.zeros(fan_out)
            return params

        def score(params, X):
            h = np.tanh(X @ params["W1"] + params["b1"])
            h = np.tanh(h @ params["W2"] + params["b2"])
            return (h @ params["W3"] + params["b3"])[:, 0]

        def softplus(z):
            return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))

        def loss(params):
            return np.mean(softplus(-y * score(params, X)))

        params = init(rng)
        n_params = sum(v.size for v in params.values())
        print({k: v.shape for k, v in params.items()})
        print(f"{n_params} parameters, initial loss {loss(params):.4f}")""", REPRO),

        md(r"""
        Before training: the reverse-mode gradient agrees with the Jacobian built column by
        column in forward mode.
        """),
        code("""
        gradient = jl.grad(loss)(params)
        forward = jl.jacobian(loss, params, mode="forward")
        assert gradient.keys() == params.keys()
        for k in params:
            assert gradient[k].shape == params[k].shape and np.allclose(gradient[k], forward[k])
        print("largest difference:", f"{max(np.max(np.abs(gradient[k] - forward[k])) for k in params):.1e}")"""),

        md(r"""
        ## Gradient descent

        Plain gradient descent, $\theta \leftarrow \theta - \eta\, \nabla L(\theta)$, with a
        fixed step size. `jl.value_and_grad` gives the loss from the evaluation the gradient
        sweeps back through. (A loss of several arguments, `loss(params, X, y)`, is
        differentiated in its first by `jl.value_and_grad(loss)(params, X, y)`, and in others
        with `argnums`, as in JAX.)
        """),
        code("""
        import time

        STEPS, LEARNING_RATE = 300, 0.5
        loss_and_grad = jl.value_and_grad(loss)
        history = []
        start = time.perf_counter()
        for step in range(STEPS):
            value, gradient = loss_and_grad(params)
            history.append(value)
            params = {k: params[k] - LEARNING_RATE * gradient[k] for k in params}
        history.append(loss(params))
        seconds = time.perf_counter() - start
        print(f"{STEPS} steps in {seconds:.2f} s ({1e3 * seconds / STEPS:.2f} ms per step)")"""),
        code("""
        accuracy = np.mean(np.sign(score(params, X)) == y)
        print(f"loss: {history[0]:.3f} -> {history[-1]:.3f}, training accuracy {accuracy:.1%}")""", REPRO),
        code("""
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.9))
        ax1.semilogy(history)
        ax1.set_xlabel("step"); ax1.set_ylabel("mean logistic loss"); ax1.set_title("loss")

        u, v = np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.1, 1.6, 150))
        grid_scores = score(params, np.column_stack([u.ravel(), v.ravel()])).reshape(u.shape)
        probability = 1.0 / (1.0 + np.exp(-grid_scores))
        filled = ax2.contourf(u, v, probability, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
        ax2.contour(u, v, grid_scores, levels=[0.0], colors="k", linewidths=1.5)
        ax2.scatter(*X[y > 0].T, s=10, c="C0", edgecolors="k", linewidths=0.3)
        ax2.scatter(*X[y < 0].T, s=10, c="C3", edgecolors="k", linewidths=0.3)
        ax2.set_xlabel("$x_1$"); ax2.set_ylabel("$x_2$")
        ax2.set_aspect("equal"); ax2.grid(False)
        ax2.set_title("P(y = +1); boundary in black")
        fig.colorbar(filled, ax=ax2, shrink=0.85, label="P(y = +1)")
        plt.show()"""),

        md(r"""
        ## What one gradient cost

        `jl.measure` counts the work of one gradient in reverse mode: one recorded evaluation
        of the loss plus one backward sweep. `jl.predict` gives the exact cost of the same row
        by forward accumulation, which needs one tangent seed per parameter. The cell asserts
        that the measured reverse count equals its prediction.
        """),
        code("""
        prediction = jl.predict(loss, params)
        reverse = jl.measure(loss, params, mode="reverse", repeat=1)
        assert reverse.total == prediction.total("reverse") and reverse.passes == 1
        forward_vector = prediction.total("forward")
        forward_single = prediction.total("forward", batch_size=1)
        one_loss = prediction.primal.total()

        print(f"one evaluation of the loss:           {one_loss:>14,.0f}")
        print(f"gradient, reverse (measured):         {reverse.total.total():>14,.0f}"
              f"  = {reverse.total.total() / one_loss:.2f} evaluations")
        print(f"gradient, forward vector (predicted): {forward_vector.total():>14,.0f}"
              f"  = {forward_vector.total() / reverse.total.total():,.0f}x reverse")
        print(f"gradient, forward 1 seed/pass:        {forward_single.total():>14,.0f}"
              f"  = {forward_single.total() / reverse.total.total():,.0f}x reverse")
        print(f"over {STEPS} steps: reverse {STEPS * reverse.total.total():,.0f}, "
              f"forward (vector) {STEPS * forward_vector.total():,.0f}")""", REPRO),

        md(r"""
        The forward count is not only a prediction: building the gradient once in forward
        mode counts exactly that (asserted below). The wall times compare the two; they vary
        from machine to machine.
        """),
        code("""
        forward_measured = jl.measure(loss, params, mode="forward", repeat=3)
        assert forward_measured.total == forward_vector
        assert np.allclose(forward_measured.jacobian, reverse.jacobian)
        timed_reverse = jl.measure(loss, params, mode="reverse", repeat=3)
        passes = forward_measured.passes
        print(f"forward: {passes} pass{'es' if passes > 1 else ''} over {n_params} seeds, "
              f"{1e3 * forward_measured.seconds:.1f} ms; reverse: 1 sweep, {1e3 * timed_reverse.seconds:.1f} ms")"""),
    ]


# --------------------------------------------------------------------------- 04

def notebook_04():
    return [
        md(r"""
        # 4 · Jacobian chains: forward, reverse, and the order in between

        A composition $f = f_q \circ \dots \circ f_1$ with widths $[w_0, w_1, \dots, w_q]$ has
        the Jacobian $J = J_q \cdots J_1$, where $J_i$ is $w_i \times w_{i-1}$. Forward
        accumulation is the right-to-left bracketing, reverse the left-to-right one; with
        $q$ factors there are Catalan$(q-1)$ bracketings in all. An $(r \times s)$ by
        $(s \times t)$ product is counted as $2rst$ FLOPs, the multiply-add convention
        (strictly $rt(2s - 1)$: $rt$ sums of $s$ products). `jl.chain.plan` finds the
        cheapest by dynamic programming; `jl.chain.Chain` runs a real chain and counts the
        products.
        """),
        code(SETUP + """
from jacobian_lab.bracketing import all_bracketings, bracketing_cost, format_bracketing"""),

        md(r"""
        ## Three chains

        The same four-stage structure with different widths: a scalar input (forward should
        win), a scalar output (reverse should win), and a width-1 bottleneck after the first
        stage, where neither pure order is optimal.
        """),
        code("""
        CHAINS = {"scalar input": [1, 100, 100, 100, 100],
                  "scalar output": [100, 100, 100, 100, 1],
                  "bottleneck": [100, 1, 100, 100, 100]}
        plans = {name: jl.chain.plan(widths) for name, widths in CHAINS.items()}
        for name, p in plans.items():
            print(f"--- {name}\\n{p.table()}\\n")
        assert [p.best_mode for p in plans.values()] == ["forward", "reverse", "optimal"]""", REPRO),

        md(r"""
        Every bracketing of four factors, priced with `bracketing_cost`; the optimum found by
        the dynamic programme is the minimum of this exhaustive list.
        """),
        code("""
        trees = list(all_bracketings(4))
        labels = [format_bracketing(t) for t in trees]
        print(f"{len(trees)} bracketings of J4 J3 J2 J1")
        print(f"{'bracketing':<18}" + "".join(f"{name:>15}" for name in CHAINS))
        for tree, label in zip(trees, labels):
            print(f"{label:<18}" + "".join(f"{bracketing_cost(w, tree):>15,}" for w in CHAINS.values()))
        for name, widths in CHAINS.items():
            assert min(bracketing_cost(widths, t) for t in trees) == plans[name].optimal_flops""", REPRO),
        code("""
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
        for ax, (name, widths) in zip(axes, CHAINS.items()):
            costs = np.array([bracketing_cost(widths, t) for t in trees])
            colors = ["C0" if i == 0 else "C3" if i == len(trees) - 1 else "0.65" for i in range(len(trees))]
            bars = ax.barh(labels, costs, color=colors)
            for bar, cost in zip(bars, costs):
                best = cost == costs.min()
                ax.text(cost * 1.15, bar.get_y() + bar.get_height() / 2, f"{cost:,}" + ("  optimal" if best else ""),
                        va="center", fontsize=8.5, fontweight="bold" if best else "normal")
            ax.set_xscale("log")
            ax.set_xlim(1e4, 1e8)
            ax.set_title(f"{name}\\nwidths {widths}", fontsize=10)
            ax.set_xlabel("FLOPs (log scale)")
            ax.grid(True, axis="x", which="major", alpha=0.3)
            ax.grid(False, axis="y")
        axes[0].invert_yaxis()
        fig.suptitle("cost of every bracketing (blue: forward, red: reverse)", fontsize=11)
        fig.tight_layout()
        plt.show()"""),

        md(r"""
        ## The dynamic programme

        Let $c_{ij}$ be the FLOPs of the cheapest way to form $J_j \cdots J_i$. Then
        $c_{ii} = 0$ and
        $c_{ij} = \min_{i \le k < j} \left(c_{k+1,j} + c_{ik} + 2\, w_j\, w_k\, w_{i-1}\right)$,
        splitting into $(J_j \cdots J_{k+1})(J_k \cdots J_i)$. `cost_table[i-1, j-1]` holds
        $c_{ij}$ and `split_table` the best $k$ (entries below the diagonal are unused, $-1$).
        For the bottleneck chain:
        """),
        code("""
        p = plans["bottleneck"]
        q = p.stages
        print("cost_table (row i = first stage, column j = last stage):")
        print(f"{'':>6}" + "".join(f"{'j=' + str(j):>11}" for j in range(1, q + 1)))
        for i in range(1, q + 1):
            print(f"{'i=' + str(i):>6}" + "".join(
                f"{p.cost_table[i - 1, j - 1]:>11,}" if j >= i else f"{'':>11}" for j in range(1, q + 1)))
        print("\\nsplit_table:")
        print(p.split_table)
        assert p.cost_table[0, q - 1] == p.optimal_flops
        print(f"\\nc_1{q} = {p.cost_table[0, q - 1]:,}: {p.bracketing}, "
              f"{p.speedup:.0f}x fewer FLOPs than the better pure order")""", REPRO),
        md(r"""
        Reading the split table back from the top entry gives the bracketing; executing it
        with counted products shows the shape and cost of each product.
        """),
        code("""
        from jacobian_lab.accounting import counting
        from jacobian_lab.rules.linalg import matmul

        def span(i, j):
            return f"J{j}" if i == j else f"J{j}..J{i}"

        def read_back(i, j, depth=0):
            if i == j:
                return
            k = int(p.split_table[i - 1, j - 1])
            print(f"{'  ' * depth}{span(i, j)}: split at k = {k} -> ({span(k + 1, j)}) ({span(i, k)})")
            read_back(k + 1, j, depth + 1)
            read_back(i, k, depth + 1)

        read_back(1, q)

        w = p.widths
        factors = [np.ones((w[i], w[i - 1])) for i in range(1, q + 1)]     # placeholders: only shapes matter

        def run(tree):
            if not isinstance(tree, tuple):
                return factors[tree - 1]
            left, right = run(tree[0]), run(tree[1])
            with counting() as counter:
                out = matmul(left, right)
            print(f"  ({left.shape[0]}x{left.shape[1]}) @ ({right.shape[0]}x{right.shape[1]}): "
                  f"{counter.cost('primal').flops:,} FLOPs")
            return out

        print(f"\\nexecuting {p.bracketing}:")
        _ = run(p.order())""", REPRO),

        md(r"""
        ## A real chain: counted equals predicted

        Four NumPy stages with the bottleneck widths: a projection to one value, an expansion
        back to 100, an elementwise $\sin$, and a dense $100 \times 100$ map. `Chain.measure`
        evaluates the chain once, forms each local Jacobian with forward mode where the stage
        widens and reverse mode otherwise (square stages included), multiplies them with the
        counted `matmul` primitive in the requested bracketing, and reports the counted
        product FLOPs next to the plan's prediction.
        """),
        code("""
        a = rng.standard_normal((1, 100)) / 10
        b_vec = rng.standard_normal((100, 1))
        W = rng.standard_normal((100, 100)) / 10

        def squeeze(z): return np.tanh(a @ z)     # R^100 -> R^1
        def expand(z): return b_vec @ z          # R^1   -> R^100
        def wave(z): return np.sin(z)            # R^100 -> R^100
        def mix(z): return W @ z                 # R^100 -> R^100

        chain = jl.chain.Chain([squeeze, expand, wave, mix])
        x = rng.standard_normal(100)
        print("widths:", chain.plan(x).widths)

        J_reference = jl.jacrev(chain)(x)
        reports = {br: chain.measure(x, bracketing=br) for br in ("forward", "reverse", "optimal")}
        for br, report in reports.items():
            assert report.matches and np.allclose(report.jacobian, J_reference)
            print(f"{br:<8} {format_bracketing(report.order):<18} counted {report.product_flops:>9,}"
                  f"  predicted {report.predicted_flops:>9,}")""", REPRO),
        code("""
        print(reports["optimal"].summary())"""),

        md(r"""
        ## The whole cost

        The plan prices only the products. Forming the local Jacobians costs work too, and so
        does running `jacfwd`/`jacrev` on the whole chain, which never forms them. All counted;
        the total of a `Chain` row also holds the chain's evaluation at $x$ (20,400 flops + 101
        transcendentals, in the summary above), which has no column of its own. Each local
        Jacobian evaluates its stage again, so a `Chain` pays for the primal twice.
        """),
        code("""
        whole = {mode: jl.measure(chain, x, mode=mode, repeat=1) for mode in ("forward", "reverse")}
        print(f"{'':<30}{'local Jacobians':>16}{'products':>12}{'total':>12}")
        for br, report in reports.items():
            print(f"{'Chain, ' + br + ' bracketing':<30}{report.local_cost.total():>16,.0f}"
                  f"{report.product_flops:>12,}{report.total.total():>12,.0f}")
        for mode, m in whole.items():
            print(f"{'whole chain, ' + mode + ' mode':<30}{'':>16}{'':>12}{m.total.total():>12,.0f}")
        J4_cost = reports["optimal"].local_costs[3].total()
        best_whole = min(m.total.total() for m in whole.values())
        print(f"\\nforming J4 (the dense 100x100 stage) alone: {J4_cost:,.0f} "
              f"= {J4_cost / reports['optimal'].local_cost.total():.0%} of the local work")
        print(f"Chain with the optimal bracketing / whole chain (better mode): "
              f"{reports['optimal'].total.total() / best_whole:.3f}")""", REPRO),
        md(r"""
        With every local Jacobian formed densely, forming $J_4$ (one cotangent seed per row,
        pulled through the dense map) dominates the total, and the saving in the products
        does not show in it. The bracketing helps when the groups it prescribes are formed as
        wholes: $(J_4 (J_3 J_2))$ is the Jacobian of
        $\text{mix} \circ \text{wave} \circ \text{expand}$, a map with a single input that
        forward mode differentiates with one tangent seed. Grouping those stages into one
        makes a two-stage chain $[100, 1, 100]$:
        """),
        code("""
        def tail(z): return mix(wave(expand(z)))    # R^1 -> R^100

        grouped = jl.chain.Chain([squeeze, tail])
        report = grouped.measure(x, bracketing="optimal")
        assert report.matches and np.allclose(report.jacobian, J_reference)
        print(f"widths {report.widths}, engines {report.modes}, products {report.product_flops:,} FLOPs")
        print(f"grouped chain, total counted: {report.total.total():,.0f}")
        print(f"whole chain, better of forward/reverse: {best_whole:,.0f} "
              f"-> {best_whole / report.total.total():.0f}x more")""", REPRO),
    ]


# --------------------------------------------------------------------------- 05

def notebook_05():
    return [
        md(r"""
        # 5 · Sparse Jacobians: coloring and compressed seeds

        Forward accumulation pushes one one-hot seed $e_j$ per input and gets column $j$ of
        $J$; reverse accumulation pulls one $e_i$ per output and gets row $i$. When most
        entries of $J$ are structurally zero, most of that work multiplies by zero. Two
        columns $j \ne j'$ that have no row in common can be pushed together as
        $e_j + e_{j'}$: each row of $J(e_j + e_{j'})$ holds an entry of at most one of them.

        A **coloring** gives every column a color $c(j) \in \{0, \dots, p-1\}$ such that
        columns sharing a row get different colors. With the seed matrix
        $S \in \{0,1\}^{n \times p}$, $S_{jc} = 1$ exactly when $c(j) = c$, the compressed
        Jacobian $B = J S$ ($m \times p$) costs $p$ JVPs instead of $n$, and every entry is
        read back from it:

        $$J_{ij} = B_{i,\,c(j)} \quad \text{for every } (i, j) \text{ in the pattern,}$$

        because the only column of color $c(j)$ with an entry in row $i$ is $j$ itself.
        Reverse mode colors rows instead (rows sharing a column differ), with row colors
        $c_r(i) \in \{0, \dots, p_r - 1\}$ and the seed matrix $S_r \in \{0,1\}^{m \times p_r}$,
        and pulls $C = S_r^\top J$ ($p_r \times n$) with $p_r$ VJPs: $J_{ij} = C_{c_r(i),\,j}$.
        """),
        code(SETUP),

        md(r"""
        ## The pattern and its coloring

        The Bratu residual on $n$ grid points,
        $r_i = (u_{i-1} - 2u_i + u_{i+1})/h^2 + \lambda e^{u_i}$ with $\lambda = 1$
        for the interior points, maps $\mathbb{R}^n \to \mathbb{R}^{n-2}$ with three entries per
        row. `jl.sparsity` reads which outputs depend on which inputs from the tape of one
        evaluation: the pattern $P$, with $P_{ij} = 1$ where output $i$ depends on input $j$.
        `jl.coloring` colors its columns greedily, columns with the most entries first. The
        three columns of one row must all differ, so no coloring has fewer than
        $\max_i |\{j : P_{ij} = 1\}| = 3$ colors; greedy reaches that bound here.
        """),
        code("""
        problem = jl.problems.get("bratu", n=12)
        f, x = problem.f, problem.x
        P = jl.sparsity(f, x)
        print(f"pattern {P.shape[0]}x{P.shape[1]}, {P.nnz} entries of {P.shape[0] * P.shape[1]}")
        print(P.toarray().astype(int))

        colors = jl.coloring(P)                     # one color per column
        p = colors.max() + 1
        lower_bound = np.diff(P.indptr).max()       # the most entries in one row
        assert p == lower_bound == 3
        print("column colors:", colors)
        print(f"{p} colors; the fullest row has {lower_bound} entries")""", REPRO),

        md(r"""
        ## $J S$: three JVPs give every entry

        The seed matrix, built by hand, and the compressed Jacobian from one vector-mode
        `jl.jvp` with the $p$ columns of $S$ as seeds (`jl.jvp` takes seeds along the first
        axis, so it receives $S^\top$ and returns $(JS)^\top$). Entry $(i, j)$ is then read
        from row $i$, column $c(j)$ of $B$, and the result equals the dense `jl.jacobian`
        bit for bit.
        """),
        code("""
        S = (colors[:, None] == np.arange(p)).astype(float)     # n x p, S[j, c] = 1 if color(j) == c
        print("S^T =")
        print(S.T.astype(int))

        _, tangents = jl.jvp(f, x, S.T)                         # p JVPs in one pass
        B = tangents.T                                          # m x p
        rows, cols = P.nonzero()
        J_read = np.zeros(P.shape)
        J_read[rows, cols] = B[rows, colors[cols]]

        J = jl.jacobian(f, x)
        assert np.array_equal(J_read, J)
        assert np.array_equal(jl.sparse_jacobian(f, x).toarray(), J)
        print(f"B = J S: {B.shape[0]}x{B.shape[1]}, from {p} seeds instead of {x.size}")
        print(f"{rows.size} entries read back from B; "
              f"equal to jl.jacobian(f, x): {np.array_equal(J_read, J)}")""", REPRO),
        md(r"""
        Each row of $B$ holds the three entries of that row of $J$, permuted by the colors
        (here $1/h^2 = 121$ twice and $-2/h^2 + \lambda e^{u_i}$ once):
        """),
        code("""
        print(B[:4])"""),

        md(r"""
        Reverse mode is the same construction on rows: color the rows so that rows sharing a
        column differ, pull one cotangent per color through the recorded tape, and read
        $J_{ij} = C_{c_r(i),\,j}$ from $C = S_r^\top J$.
        """),
        code("""
        row_colors = jl.coloring(P, mode="reverse")              # one color per row
        p_rows = row_colors.max() + 1
        S_rows = (row_colors[:, None] == np.arange(p_rows)).astype(float)   # m x p_rows

        _, pullback = jl.vjp(f, x)
        C = pullback(S_rows.T)                                   # p_rows VJPs: S_rows^T J, p_rows x n
        J_read = np.zeros(P.shape)
        J_read[rows, cols] = C[row_colors[rows], cols]
        assert np.array_equal(J_read, J)
        print("row colors:", row_colors)
        print(f"C = S_r^T J: {C.shape[0]}x{C.shape[1]}, from {p_rows} cotangents instead of {J.shape[0]}; "
              f"equal to jl.jacobian(f, x): {np.array_equal(J_read, J)}")""", REPRO),

        md(r"""
        The number of colors does not grow with $n$: the band is three wide whatever the
        size. At $n = 200$ the $198 \times 200$ pattern compresses to $198 \times 3$; the
        colors repeat every three columns, and every row of $B$ holds one entry of each.
        """),
        code("""
        big = jl.problems.get("bratu", n=200)
        P_big = jl.sparsity(big.f, big.x)
        colors_big = jl.coloring(P_big)
        J_big = jl.sparse_jacobian(big.f, big.x)
        r, c = P_big.nonzero()
        top = r < 12                                   # the first rows, enlarged
        palette = np.array(["C0", "C1", "C2"])[colors_big[c[top]]]

        fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(10.0, 3.6), gridspec_kw={"width_ratios": [3, 3, 1]})
        ax1.spy(P_big, markersize=1)
        ax1.set_title(f"pattern of J, {P_big.shape[0]}x{P_big.shape[1]}", fontsize=10)
        ax1.set_xlabel("column j"); ax1.set_ylabel("row i")
        ax2.scatter(c[top], r[top], c=palette, marker="s", s=60)
        for k in range(3):                             # the colour key
            ax2.scatter([], [], c=f"C{k}", marker="s", s=60, label=f"color {k}")
        ax2.legend(fontsize=8, loc="lower left")
        ax2.set_xlim(-0.5, 14.5); ax2.set_ylim(11.5, -0.5)
        ax2.set_title("first 12 rows, colored by column color", fontsize=10)
        ax2.set_xlabel("column j"); ax2.set_ylabel("row i")
        ax3.scatter(colors_big[c[top]], r[top], c=palette, marker="s", s=60)
        ax3.set_xlim(-0.5, 2.5); ax3.set_ylim(11.5, -0.5); ax3.set_xticks(range(3))
        ax3.set_title("B = J S", fontsize=10)
        ax3.set_xlabel("color"); ax3.set_ylabel("row i")
        fig.tight_layout()
        plt.show()
        print(f"{colors_big.max() + 1} colors for {P_big.shape[1]} columns; {J_big.nnz} entries, "
              f"equal to jl.jacobian: {np.array_equal(J_big.toarray(), jl.jacobian(big.f, big.x))}")"""),

        md(r"""
        ## What the compression saves, counted

        `jl.measure(f, x, mode="sparse")` counts the work of `jl.sparse_jacobian`: one
        evaluation of $f$ (recorded on a tape) and one tangent per color pushed through it;
        reading the pattern and coloring it are bookkeeping on indices and count nothing.
        Each seed of bratu costs the same tangent work whether it is one-hot or a sum of
        one-hot vectors, so the tangent phase shrinks by exactly $n / 3$ (the phases below
        are FLOPs; the total adds the transcendentals):
        """),
        code("""
        problem = jl.problems.get("bratu", n=300)
        f, x = problem.f, problem.x
        runs = {mode: jl.measure(f, x, mode=mode, repeat=1) for mode in ("forward", "reverse", "sparse")}

        print(f"bratu, n = {problem.n}, m = {problem.m}")
        print(f"{'mode':<9}{'passes':>7}{'seeds/pass':>11}{'primal':>10}{'tangent':>12}{'cotangent':>12}{'total':>12}")
        for mode, m in runs.items():
            print(f"{mode:<9}{m.passes:>7}{m.batch_size:>11}{m.cost['primal'].flops:>10,}{m.cost['tangent'].flops:>12,}"
                  f"{m.cost['cotangent'].flops:>12,}{m.total.total():>12,.0f}")
        print("sparse:", runs["sparse"].reason)

        dense_tangent = runs["forward"].cost["tangent"].flops
        sparse_tangent = runs["sparse"].cost["tangent"].flops
        per_seed = jl.predict(f, x).tangent.per_seed
        assert runs["sparse"].cost["tangent"] == 3 * per_seed
        assert runs["forward"].cost["tangent"] == problem.n * per_seed
        assert 3 * dense_tangent == problem.n * sparse_tangent
        print(f"\\none seed: {per_seed.flops:,} tangent FLOPs, one-hot or compressed")
        print(f"forward / sparse tangent FLOPs = {dense_tangent:,} / {sparse_tangent:,} "
              f"= {dense_tangent // sparse_tangent} = n / 3")
        assert np.array_equal(runs["sparse"].jacobian.toarray(), runs["forward"].jacobian)  # kept sparse""", REPRO),
        md(r"""
        `jl.compare` puts the `sparse` row beside the dense schedules (its times vary from
        machine to machine). Its closing verdict weighs the two dense orders against each
        other, which differ by about 13 % on this near-square Jacobian, then says how many
        times fewer FLOPs + transcendentals the compressed seeds need:
        """),
        code("""
        print(jl.compare(f, x, modes=("forward", "reverse", "sparse")).table())"""),

        md(r"""
        ## Forward and reverse colorings differ

        Column coloring and row coloring are not the same problem. In
        $f(x) = x \cdot x_0$ every output depends on $x_0$: column 0 is full. It conflicts
        with every other column, but the others share no row, so forward mode needs 2
        colors; every pair of rows shares column 0, so reverse mode needs $n$. Its mirror
        image, $g(x) = (\sum_k x_k,\ x_1^2, \dots, x_{n-1}^2)$, has a full row 0 and the
        opposite counts. `mode="auto"` takes the plan with the fewest seeds (ties: forward,
        then reverse); the callable returned without $x$ reports its choice in `.chosen` and
        its number of seeds in `.seeds`.
        """),
        code("""
        def arrow_column(x):
            return x * x[0]

        def arrow_row(x):
            return np.concatenate([np.sum(x, keepdims=True), x[1:] ** 2])

        n = 8
        x = np.linspace(1.0, 2.0, n)
        for fn in (arrow_column, arrow_row):
            P = jl.sparsity(fn, x)
            n_forward = jl.coloring(P, mode="forward").max() + 1
            n_reverse = jl.coloring(P, mode="reverse").max() + 1
            sj = jl.sparse_jacobian(fn)
            J = sj(x)
            assert np.array_equal(J.toarray(), jl.jacobian(fn, x))
            print(f"{fn.__name__}: pattern")
            print(P.toarray().astype(int))
            print(f"forward: {n_forward} colors, reverse: {n_reverse} colors -> auto picks {sj.chosen} "
                  f"({sj.colors.max() + 1} seeds instead of {n})\\n")""", REPRO),

        md(r"""
        ## Both at once: bidirectional seeds

        With a full row *and* a full column, $h(x) = (\sum_k x_k,\ x_1 x_0, \dots, x_{n-1} x_0)$,
        both colorings need $n$ colors: the full row makes every column conflict, the full
        column every row. Pulling the full row with one cotangent and coloring the columns of
        the other rows for tangents needs $1 + 2$ seeds: in the rows left, column 0 is still
        full, but the other columns share no row. Entries of the pulled row come from the
        cotangent, the others from the tangents. `jl.sparse_jacobian` finds this plan
        (`mode="bidirectional"`, or `"auto"` when it needs the fewest seeds), pulling the $t$
        densest rows for the $t$ that makes $t$ plus the largest remaining row smallest.
        """),
        code("""
        def arrow(x):
            return np.concatenate([np.sum(x, keepdims=True), x[1:] * x[0]])

        x = np.linspace(1.0, 2.0, n)
        print(jl.sparsity(arrow, x).toarray().astype(int))
        for mode in ("forward", "reverse", "bidirectional", "auto"):
            sj = jl.sparse_jacobian(arrow, mode=mode)
            J = sj(x)
            assert np.array_equal(J.toarray(), jl.jacobian(arrow, x))
            print(f"{mode:>13}: {sj.seeds} seeds ({sj.chosen})")""", REPRO),

        md(r"""
        ## When compression cannot help

        `dense`, $\tanh(Wx + b)$ with a full $W$, has a full Jacobian: every pair of columns
        shares every row, so both colorings need $n$ colors and the compressed seeds are the
        one-hot seeds. The sparse route then does exactly the work of forward mode.
        """),
        code("""
        problem = jl.problems.get("dense", n=100)
        P = jl.sparsity(problem.f, problem.x)
        print(f"dense, n = {problem.n}: {P.nnz:,} of {P.shape[0] * P.shape[1]:,} entries; "
              f"{jl.coloring(P).max() + 1} forward colors, {jl.coloring(P, mode='reverse').max() + 1} reverse colors")
        sparse = jl.measure(problem.f, problem.x, mode="sparse", repeat=1)
        forward = jl.measure(problem.f, problem.x, mode="forward", repeat=1)
        assert sparse.total == forward.total
        print(f"sparse: {sparse.total.total():,.0f} counted, forward: {forward.total.total():,.0f} counted")""", REPRO),

        md(r"""
        ## A pattern of operations, not of values

        The pattern says which inputs reach which outputs through the operations $f$ ran, so
        it holds for every $x$ that runs the same operations. An entry in it can still be
        zero at a particular $x$: `np.maximum(a, b)` depends on both operands (at another $x$
        the other one wins), and `x * 0` keeps its entries. `sparse_jacobian` stores every
        entry of the pattern, zeros included.
        """),
        code("""
        def larger(x):
            return np.maximum(x[:3], x[3:])

        def times_zero(x):
            return x * 0

        x = np.array([1.0, 5.0, 3.0, 4.0, 2.0, 6.0])
        for fn in (larger, times_zero):
            P = jl.sparsity(fn, x)
            J = jl.sparse_jacobian(fn, x)
            print(f"{fn.__name__}: pattern / Jacobian at x = {x}")
            print(P.toarray().astype(int))
            print(J.toarray())
            print(f"stored entries: {J.nnz}, nonzero values: {np.count_nonzero(J.data)}\\n")""", REPRO),

        md(r"""
        ## Compressed and compiled

        In Newton's method the same sparse Jacobian is needed at many points. `jl.jit`
        compiles `sparse_jacobian` too: the first call reads the pattern, colors it and
        records the pass that pushes the compressed seeds; a replay runs it as straight-line
        NumPy and gathers the entries into the same `csr_array`. For the Bratu residual the
        stencil part $(u_{i-1} - 2u_i + u_{i+1})/h^2$ is linear, so its contribution to the
        three compressed tangents is the same at every $u$ and folds into a constant (`c1`).
        What a replay computes is $e^{u_i}$, its product with the seeds (`c0`), the product
        with $\lambda$ (the `1.0`, which the compiler keeps as written) and the sum with `c1`.
        """),
        code("""
        problem = jl.problems.get("bratu")
        compiled = jl.jit(jl.sparse_jacobian(problem.f))
        for u in (problem.x, 0.5 * problem.x):
            assert (compiled(u) != jl.sparse_jacobian(problem.f, u)).nnz == 0  # the same entries, bit for bit
        program = compiled.program(problem.x)
        eager = jl.measure(problem.f, problem.x, mode="sparse", repeat=1)
        print(f"{program.mode} program, one pass of {program.seeds[0]} seeds, compiled {compiled.compiles} time(s)")
        print(f"counted per replay: {program.cost}; eager sparse Jacobian: {eager.total}")
        print(program.source)""", REPRO),
        code("""
        import timeit

        def ms(fn):
            return 1e3 * min(timeit.repeat(fn, number=50, repeat=5)) / 50

        eager_sparse = jl.sparse_jacobian(problem.f)
        print(f"eager sparse {ms(lambda: eager_sparse(problem.x)):.3f} ms, "
              f"compiled {ms(lambda: compiled(problem.x)):.3f} ms, "
              f"dense forward {ms(lambda: jl.jacobian(problem.f, problem.x, mode='forward')):.1f} ms")"""),

        md(r"""
        ## A right-hand side assembled in place

        A stiff ODE $\dot u = F(u)$ on a graph is usually written the way its equations read:
        a reaction term per node, then a flux along every edge $(i, j)$ added to one end and
        subtracted from the other with `np.add.at`, then rows overwritten for boundary
        conditions. Here Fisher's equation on a ring of $n$ nodes, with node 0 held fixed:

        $$\dot u_i = u_i (1 - u_i) + D \sum_{(i, j)} (u_j - u_i) - D \sum_{(j, i)} (u_i - u_j),
        \qquad \dot u_0 = 0 .$$

        The writes are moves and the additions scatter-adds, so the pattern comes out exact:
        row 0 is empty, every other row has three entries, and row $n-1$ reaches around the
        ring to column 0; the other corner, $(0, n-1)$, went with row 0. It takes four colors,
        not three: along rows 1 to $n-2$, three colors would have to repeat every three
        columns, and row $n-1$ holds columns $n-2$, $n-1$ and $0$, so column 0 would share a
        color with one of the other two unless $n$ is a multiple of 3 (here $n = 200$, and
        column 198). A stiff solver (`solve_ivp` with BDF) takes the compiled sparse Jacobian
        as `jac`; it is compared with the solver's own finite differences on the same pattern.
        """),
        code("""
        from scipy.integrate import solve_ivp

        n, D = 200, 50.0
        nodes = np.arange(n)
        edges = np.stack([nodes, (nodes + 1) % n], axis=1)  # a ring

        def fisher(u):
            du = u * (1.0 - u)
            flux = D * (u[edges[:, 1]] - u[edges[:, 0]])
            np.add.at(du, edges[:, 0], flux)
            np.subtract.at(du, edges[:, 1], flux)
            du[0] = 0.0  # node 0 held fixed
            return du

        u0 = np.exp(-0.01 * (nodes - n / 2) ** 2)
        P = jl.sparsity(fisher, u0)
        colors = jl.coloring(P)
        print(f"pattern: {P.nnz} entries in {n} rows; row 0 holds {P[[0]].nnz}, row {n - 1} reaches around "
              f"the ring to column 0: {P[n - 1, 0]}; {colors.max() + 1} colors, so {colors.max() + 1} tangents")

        jac = jl.jit(jl.sparse_jacobian(fisher))
        exact = solve_ivp(lambda t, u: fisher(u), (0.0, 10.0), u0, method="BDF", jac=lambda t, u: jac(u))
        differences = solve_ivp(lambda t, u: fisher(u), (0.0, 10.0), u0, method="BDF", jac_sparsity=P)
        print(f"BDF, compiled Jacobian: {exact.t.size - 1} steps, Jacobian evaluations: {exact.njev}; "
              f"finite differences on P: {differences.t.size - 1} steps, Jacobian evaluations: {differences.njev}")
        print("the same solution to 1e-9:", np.allclose(exact.y[:, -1], differences.y[:, -1], rtol=0, atol=1e-9))""",
             REPRO),
    ]


# --------------------------------------------------------------------------- 06

def notebook_06():
    return [
        md(r"""
        # 6 · Hessians: the Jacobian of the gradient

        The Hessian of a scalar $f:\mathbb{R}^n \to \mathbb{R}$ is the matrix of its second
        derivatives, $H_{ij} = \partial^2 f / \partial x_i\, \partial x_j$. It is the Jacobian of
        the gradient, $H = J_{\nabla f}$, and $\nabla f:\mathbb{R}^n \to \mathbb{R}^n$ is a
        function like any other: the gradient can be built in either order, and so can its
        Jacobian. That makes four compositions, written *outer over inner*:

        | composition | $\nabla f$ (inner) | $J_{\nabla f}$ (outer) |
        |---|---|---|
        | forward over reverse | one sweep of $f$'s tape | $k$ tangents pushed through $f$ and the sweep: $k$ columns $H e_j$ |
        | reverse over reverse | one sweep of $f$'s tape | the sweep recorded on a second tape; $n$ cotangents pulled back through it |
        | forward over forward | $n$ tangents pushed through $f$ | $n$ tangents of each of those $n$: $n \times n$ values per intermediate |
        | reverse over forward | $n$ tangents pushed through $f$ | that pass recorded; $n$ cotangents pulled back through it |

        One reverse sweep gives $\nabla f$ for a few evaluations of $f$ (the cheap-gradient
        principle), and each tangent $v$ pushed through the recording and the sweep gives one
        Hessian-vector product $Hv$, so forward over reverse is the usual choice, and it is what
        `jl.hessian` computes by default. The engines nest in any order (the rules compute with the
        primitives, so an enclosing engine differentiates them too), so this notebook builds all
        four and counts them.
        """),
        code(SETUP + """
from jacobian_lab.accounting import counting

engine = jl.engines.get"""),

        md(r"""
        ## Four compositions of one Hessian

        The Rosenbrock function, $f(x) = \sum_{i=0}^{n-2} 100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2$,
        has a tridiagonal Hessian, written by hand:

        $$H_{ii} = [i < n-1]\,(1200 x_i^2 - 400 x_{i+1} + 2) + [i > 0]\, 200, \qquad
        H_{i,i+1} = H_{i+1,i} = -400\, x_i.$$

        Each gradient below is a function of $v$ that an outer engine can differentiate. The
        forward engine returns one tangent per seed along the first axis, so with the $n$
        one-hot seeds of `np.eye(n)` its result holds the columns $He_j$ as rows (it is
        $H^\top$); the reverse engine's pullback of the rows of `np.eye(n)` gives the rows
        $e_i^\top H$. Forward over reverse, transposed, is `jl.hessian` bit for bit.
        """),
        code("""
        def rosenbrock(x):
            return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        def rosenbrock_hessian(x):
            n = x.size
            H = np.zeros((n, n))
            i = np.arange(n - 1)
            H[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
            H[i + 1, i + 1] += 200.0
            H[i, i + 1] = H[i + 1, i] = -400.0 * x[:-1]
            return H

        def gradient_rev(f):                  # one sweep: pull back the cotangent 1
            return lambda v: engine("reverse").vjp(f, v)[1](np.ones(1))[0]

        def gradient_fwd(f):                  # n tangents: the one-hot seeds
            return lambda v: engine("forward").jvp(f, v, np.eye(v.size))[1]

        COMPOSITIONS = {                      # each returns H (n x n)
            "forward over reverse": lambda f, x: engine("forward").jvp(gradient_rev(f), x, np.eye(x.size))[1].T,
            "reverse over reverse": lambda f, x: engine("reverse").vjp(gradient_rev(f), x)[1](np.eye(x.size)),
            "forward over forward": lambda f, x: engine("forward").jvp(gradient_fwd(f), x, np.eye(x.size))[1].T,
            "reverse over forward": lambda f, x: engine("reverse").vjp(gradient_fwd(f), x)[1](np.eye(x.size)),
        }

        n = 40
        x = rng.uniform(-1.5, 1.5, n)
        H_hand = rosenbrock_hessian(x)
        hessians = {name: build(rosenbrock, x) for name, build in COMPOSITIONS.items()}
        for name, H in hessians.items():
            close = np.allclose(H, H_hand, rtol=1e-12, atol=1e-9)
            assert close, name
            print(f"{name}: {H.shape[0]}x{H.shape[1]}, equal to the hand-written Hessian to 1e-12: {close}")
        same = np.array_equal(hessians["forward over reverse"], jl.hessian(rosenbrock, x))
        assert same
        print("forward over reverse == jl.hessian(rosenbrock, x), bit for bit:", same)
        nested = np.array_equal(jl.jacfwd(jl.grad(rosenbrock))(x), jl.hessian(rosenbrock, x))
        assert nested                         # the public functions nest the same way
        print("jl.jacfwd(jl.grad(rosenbrock))(x) == jl.hessian(rosenbrock, x), bit for bit:", nested)
        print("the first rows of H:")
        print(H_hand[:4, :6])""", REPRO),

        md(r"""
        ## What each composition costs, counted

        The same four, inside `counting()`. The phases keep their meanings when the engines
        nest: `primal` is $f$ itself, `tangent` every forward-mode derivative and `cotangent`
        every reverse-mode one (the inner sweep's values, and the outer sweep's in reverse over
        reverse). Each composition is one inner pass (one sweep with the cotangent 1 for a
        reverse inner gradient, the $n$ tangent seeds for a forward one) and one outer pass
        with $n$ seeds, so `passes` is 2 throughout.
        """),
        code("""
        counted = {}
        for name, build in COMPOSITIONS.items():
            with counting() as c:
                build(rosenbrock, x)
            counted[name] = c

        print(f"Rosenbrock, n = {n}: f costs {jl.count_flops(rosenbrock, x).flops} flops")
        print(f"{'composition':<22}{'passes':>7}{'primal':>8}{'tangent':>11}{'cotangent':>11}{'total':>11}{'/ fwd-rev':>11}")
        reference = counted["forward over reverse"].total().flops
        for name, c in counted.items():
            phases = [c.cost(p).flops for p in ("primal", "tangent", "cotangent")]
            assert c.total().transcendentals == 0 and sum(phases) == c.total().flops
            print(f"{name:<22}{c.passes:>7}{phases[0]:>8,}{phases[1]:>11,}{phases[2]:>11,}{c.total().flops:>11,}"
                  f"{c.total().flops / reference:>11.3f}")""", REPRO),
        code("""
        import tracemalloc

        def peak_bytes(build):
            tracemalloc.start()
            build(rosenbrock, x)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

        peaks = {name: peak_bytes(build) for name, build in COMPOSITIONS.items()}
        names = list(counted)
        labels = [name.replace(" over ", "\\nover\\n") for name in names]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.0, 3.8))
        bottom = np.zeros(len(names))
        for phase, color in (("primal", "C7"), ("tangent", "C0"), ("cotangent", "C1")):
            values = np.array([counted[name].cost(phase).flops for name in names], dtype=float)
            ax1.bar(labels, values, bottom=bottom, color=color, label=phase)
            bottom += values
        for i, total in enumerate(bottom):
            ax1.text(i, total, f"{total:,.0f}", ha="center", va="bottom", fontsize=8)
        ax1.set_ylim(0, 1.12 * bottom.max())
        ax1.set_ylabel("counted FLOPs"); ax1.set_title(f"work by phase, n = {n}", fontsize=10)
        ax1.legend(fontsize=8, loc="upper left")
        ax2.bar(labels, [peaks[name] / 1024 for name in names], color="C2")
        ax2.set_ylabel("KiB"); ax2.set_title("peak memory allocated (tracemalloc)", fontsize=10)
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        plt.show()
        for name in names:
            print(f"{name:<22} peak {peaks[name] / 1024:>8,.0f} KiB")"""),

        md(r"""
        The two compositions with a forward-mode inner gradient cost about 18 times as much: the
        inner gradient is $n$ tangents of every value of $f$, and the outer derivative of each
        of them is another $n$, so their work is $\Theta(n^2)$ times $f$'s, against $\Theta(n)$
        for the other two, and they hold $n \times n$ values per intermediate in memory. The
        constants differ: at $n = 40$ the totals above are about $1.2\,n^2$ times $f$'s 311
        flops for the two with a forward inner gradient and $2.1\,n$ to $2.6\,n$ times for the
        two with a reverse one, so the last column reads about 18, not $n = 40$.

        Between the two with a reverse inner gradient, the counts do not favour forward over
        reverse: reverse over reverse counts 20 % less here, and it also peaks lower in
        memory, because forward over reverse carries $n$ tangents with every value on $f$'s
        tape until the sweep is done. The difference in FLOPs is work the forward pass
        cannot know to skip: it pushes its tangents through everything the inner function
        computes, including $f$'s own value (the squares, their sum), which the gradient never
        reads, while the outer reverse sweep starts from the gradient and reaches only what it
        reads. The next section counts this exactly on a small function. What forward over
        reverse has instead: no tape of the sweep, a pass of any $k$ seeds (one seed is a
        Hessian-vector product, and `batch_size` bounds a pass's memory), and a compiled
        program that drops the unread tangents (the last section), which makes it cheaper than
        any of the four.
        """),

        md(r"""
        ## `jl.hessian`, phase by phase

        `jl.hessian(f)` is forward over reverse, with as many seeds per pass as keep a pass's
        arrays about cache-sized (`batch_size` sets it); `jl.hessian(f, mode="reverse")` is
        reverse over reverse, and `mode="auto"` predicts both and takes the cheaper. Inside
        `counting()`, a first `auto` call also counts the probes that chose the order; a
        second call counts the chosen order alone.

        For $f(x) = \sum_i \sin x_i$ with all $k = n$ seeds in one pass, every count follows
        from the conventions. Write $\bar y$ for the cotangent that reaches $\sin$ in the sweep
        (the $1$ of the sum, broadcast to $n$ entries), $\dot x$ for the $k$ tangent seeds and
        $\dot c$ for the tangent of $\cos x$:

        * `primal`: $\sin$ ($n$ transcendentals) and the sum ($n - 1$ flops);
        * `cotangent`, the sweep's values: its factor $\cos x$ ($n$ transcendentals) and
          $\bar y \cos x$ ($n$ flops);
        * `tangent`: $\sin$'s JVP $\dot x \cos x$ ($n$ transcendentals, $kn$ flops) and the
          sum's ($k(n-1)$ flops), then, inside the sweep, $\cos$'s JVP
          $\dot c = \dot x \cdot (-\sin x)$ ($n$ transcendentals, $n + kn$ flops) and
          $\bar y\, \dot c$ ($kn$ flops).

        The first two tangent terms differentiate $f$'s value, which the Hessian never reads:
        $kn + k(n-1)$ of the $4kn - k + n$ tangent flops.
        """),
        code("""
        def sum_of_sines(x):
            return np.sum(np.sin(x))

        n_s = 6
        x_s = np.linspace(0.1, 0.9, n_s)
        k = n_s
        with counting() as c:
            H_s = jl.hessian(sum_of_sines, x_s)
        assert np.allclose(H_s, np.diag(-np.sin(x_s)), rtol=1e-15, atol=0)
        expected = {
            "primal": jl.Cost(n_s - 1, n_s),
            "cotangent": jl.Cost(n_s, n_s),
            "tangent": jl.Cost(k * n_s + k * (n_s - 1) + n_s + k * n_s + k * n_s, 2 * n_s),
        }
        print(f"sum(sin(x)), n = k = {n_s}: passes {c.passes}, seeds per pass {c.batch_size}")
        for phase, cost in expected.items():
            assert c.cost(phase) == cost, phase
            print(f"{phase:<10} {c.cost(phase)}  (the formula: {cost.flops} flops, {cost.transcendentals} transcendentals)")
        unread = k * n_s + k * (n_s - 1)
        print(f"tangent flops spent on f's value: {unread} of {c.cost('tangent').flops}")""", REPRO),

        md(r"""
        ## A Hessian-vector product without the Hessian

        One tangent $v$ pushed through the gradient gives $Hv$, the directional derivative of
        $\nabla f$, without forming $H$: Newton-CG and other second-order methods need only
        these. A forward pass with $k$ seeds does tangent work $a + kb$: $a$ is done once per
        pass whatever the number of seeds (the factors of the JVP rules, such as $-\sin x$ for
        $\cos$ above), $b$ once per seed. Reading $a$ and $b$ from passes with one and two
        seeds predicts both counts below exactly. `jl.hvp(f, x, v)` is this pass, with $v$ of
        $x$'s shape (or $k$ of them stacked).
        """),
        code("""
        v = rng.standard_normal(n)
        with counting() as hvp:
            g, Hv = engine("forward").jvp(gradient_rev(rosenbrock), x, v[None])   # one seed: shape (1, n)
        assert np.array_equal(jl.hvp(rosenbrock, x, v), Hv[0])
        with counting() as full:
            H = jl.hessian(rosenbrock, x, batch_size=n)
        assert np.allclose(Hv[0], H @ v, rtol=1e-12, atol=1e-9)
        assert np.allclose(g, jl.grad(rosenbrock)(x), rtol=1e-14, atol=0)

        def tangent_flops(seeds):
            with counting() as c:
                engine("forward").jvp(gradient_rev(rosenbrock), x, seeds)
            return c.cost("tangent").flops

        b = tangent_flops(np.eye(n)[:2]) - tangent_flops(np.eye(n)[:1])
        a = tangent_flops(np.eye(n)[:1]) - b
        assert hvp.cost("tangent").flops == a + b and full.cost("tangent").flops == a + n * b
        assert all(hvp.cost(p) == full.cost(p) for p in ("primal", "cotangent"))
        print(f"Rosenbrock, n = {n}: Hv equals H @ v to 1e-12: {np.allclose(Hv[0], H @ v, rtol=1e-12, atol=1e-9)}")
        print(f"tangent work a + k b with a = {a}, b = {b}")
        print(f"Hv, one seed:         {hvp.cost('tangent').flops:>7,} tangent flops = a + b")
        print(f"H, {n} seeds:          {full.cost('tangent').flops:>7,} tangent flops = a + {n} b")
        print(f"primal and cotangent: {hvp.cost('primal').flops + hvp.cost('cotangent').flops:>7,} flops in both "
              f"(f and its sweep, once)")""", REPRO),

        md(r"""
        ## Sparse Hessians

        The Rosenbrock Hessian is tridiagonal: column $j$ shares rows with columns $j \pm 1$
        and $j \pm 2$ only, so the columns take three colors, and three compressed seeds
        (sums of one-hot seeds, as in notebook 05) give every entry. `jl.sparse_hessian`
        reads the pattern from the tape of $f$ and its sweep, colors the gradient's Jacobian
        as for any Jacobian and pushes one seed per color, forward over reverse; each stored
        entry is computed by the same operations as with a one-hot seed, so the values are
        `jl.hessian`'s bit for bit. (A coloring that uses the symmetry follows below.)
        """),
        code("""
        n_big = 200
        x_big = rng.uniform(-1.5, 1.5, n_big)
        sparse_h = jl.sparse_hessian(rosenbrock)              # keeps the pattern and its coloring
        with counting() as sparse:
            S = sparse_h(x_big)
        with counting() as dense:
            H_big = jl.hessian(rosenbrock, x_big, batch_size=n_big)
        assert np.array_equal(S.toarray(), H_big)
        assert np.allclose(H_big, rosenbrock_hessian(x_big), rtol=1e-12, atol=1e-9)
        print(f"{type(S).__name__} {S.shape[0]}x{S.shape[1]}, {S.nnz} entries (3n - 2 = {3 * n_big - 2}); "
              f"mode {sparse_h.chosen}, {sparse_h.colors.max() + 1} colors: {sparse_h.colors[:9]} ...")
        print("equal to jl.hessian, bit for bit:", np.array_equal(S.toarray(), H_big))
        print(f"{'':<8}{'seeds':>6}{'primal':>8}{'tangent':>10}{'cotangent':>11}")
        for label, c in (("sparse", sparse), ("dense", dense)):
            print(f"{label:<8}{c.batch_size:>6}{c.cost('primal').flops:>8,}{c.cost('tangent').flops:>10,}"
                  f"{c.cost('cotangent').flops:>11,}")
        ratio = dense.cost("tangent").flops / sparse.cost("tangent").flops
        print(f"dense / sparse tangent flops = {ratio:.2f} (n / 3 = {n_big / 3:.2f})")""", REPRO),
        md(r"""
        The ratio falls short of $n/3$ because the tangent work is $a + kb$, and $a$ is paid
        once by either. In the pattern, the colors repeat every three columns:
        """),
        code("""
        from jacobian_lab import plots

        small = jl.sparse_hessian(rosenbrock)
        plots.pattern_colors(small(x_big[:24]), small.colors, title="Rosenbrock, n = 24")"""),

        md(r"""
        ## Using the symmetry: star colorings

        One variable coupled to all the others gives an arrow-shaped Hessian, and its full
        first row defeats a column coloring: every column needs its own color. But
        $H_{ij} = H_{ji}$, so entry $(i, j)$ can be read in row $i$ of the product with
        $j$'s color, or, as its mirror image, in row $j$ of the product with $i$'s color. A
        *star coloring* makes one of the two places hold that entry alone: neighbouring
        columns (those with an entry $(i, j)$) differ, and no path through four columns
        alternates two colors. The variable in the corner takes one color and all the others
        share a second. `mode="star"` reads the Hessian this way. `mode="auto"` takes it only
        when it needs strictly fewer seeds than the other plans: an entry read from its
        mirror image is the dense Hessian's entry at $(j, i)$, equal to $(i, j)$ only up to
        rounding, while the other plans give `jl.hessian`'s values bit for bit.
        """),
        code("""
        def arrow(x):                                        # x[0] couples to every other coordinate
            return x[0] * np.sum(x[1:] ** 2) + np.sum(np.sin(x))

        x_arrow = np.linspace(-1.0, 1.0, 100)
        H_arrow = jl.hessian(arrow, x_arrow)
        for mode in ("forward", "bidirectional", "star"):
            arrow_h = jl.sparse_hessian(arrow, mode=mode)
            S_arrow = arrow_h(x_arrow)
            print(f"{mode:<14}{arrow_h.seeds:>4} seeds   max |S - H| = {np.abs(S_arrow.toarray() - H_arrow).max():.1e}")
        auto_h = jl.sparse_hessian(arrow)
        auto_h(x_arrow)
        print("auto takes", auto_h.chosen, "with colors", auto_h.colors[:6], "...")""", REPRO),

        md(r"""
        ## Compiled Hessians

        `jl.jit(jl.hessian(f))` records the forward pass over the recorded sweep once and
        replays it as a straight-line NumPy program. The program keeps only the work that
        reaches $H$: $f$'s value, its tangents and the gradient itself are not computed, only
        the values of the sweep that the tangent rules read. Its cost is known before it runs, and
        counting a replay adds exactly that. For the sum of sines the program is the $n$
        negations and transcendentals of $-\sin x$ and the two products with the $k = n$
        seeds, $2kn + n$ flops, against the $4kn - k + n$ tangent flops of the eager pass.
        """),
        code("""
        compiled = jl.jit(jl.hessian(rosenbrock))
        H_first = compiled(x)                                 # records and compiles
        H_again = compiled(rng.uniform(-1.5, 1.5, n))         # replays at another x of the same shape
        program = compiled.program(x)
        with counting() as replay:
            H_replay = compiled(x)
        with counting() as eager:
            H_eager = jl.hessian(rosenbrock, x)
        assert np.array_equal(H_replay, H_eager) and np.array_equal(H_first, H_eager)
        assert replay.total() == program.cost and compiled.compiles == 1
        assert eager.total() == counted["forward over reverse"].total()
        assert program.cost.flops < counted["reverse over reverse"].total().flops
        print(f"Rosenbrock, n = {n}: {compiled.compiles} program ({program.mode} over the recorded sweep), "
              f"equal to jl.hessian bit for bit: {np.array_equal(H_replay, H_eager)}")
        print(f"per replay: {program.cost.flops:,} flops (counted: {replay.total().flops:,}); "
              f"eager jl.hessian: {eager.total().flops:,}; reverse over reverse: "
              f"{counted['reverse over reverse'].total().flops:,}")

        compiled_s = jl.jit(jl.hessian(sum_of_sines))
        assert np.array_equal(compiled_s(x_s), jl.hessian(sum_of_sines, x_s))
        cost_s = compiled_s.program(x_s).cost
        assert cost_s == jl.Cost(2 * k * n_s + n_s, n_s)
        print(f"sum(sin(x)), n = k = {n_s}: per replay {cost_s} = (2kn + n, n)")""", REPRO),
        md(r"""
        Timed on this machine (the numbers vary from run to run and machine to machine):
        """),
        code("""
        import timeit

        def best_ms(fn, number=50):
            return 1e3 * min(timeit.repeat(fn, number=number, repeat=5)) / number

        for label, fn in (("eager jl.hessian", lambda: jl.hessian(rosenbrock, x)),
                          ("jl.jit(jl.hessian)", lambda: compiled(x)),
                          ("reverse over reverse", lambda: COMPOSITIONS["reverse over reverse"](rosenbrock, x))):
            print(f"{label:<22} {best_ms(fn):.3f} ms")"""),

        md(r"""
        ## Summary

        * $H = J_{\nabla f}$; of the four compositions, the two with a reverse inner gradient
          cost $\Theta(n)$ times $f$ (here $2.1\,n$ to $2.6\,n$), the two with a forward one
          $\Theta(n^2)$ times (here $1.2\,n^2$).
        * Eager, reverse over reverse counted the least work on Rosenbrock, because the
          forward pass also differentiates $f$'s own value; forward over reverse has no tape of
          the sweep, gives Hessian-vector products one seed at a time, and compiles to the
          cheapest program of all.
        * A sparse Hessian needs one seed per color: three for a tridiagonal one, whatever $n$.
        """),
    ]


NOTEBOOKS = {
    "01_jacobians_and_the_chain_rule.ipynb": notebook_01,
    "02_forward_vs_reverse_crossover.ipynb": notebook_02,
    "03_training_with_reverse_mode.ipynb": notebook_03,
    "04_chain_bracketing.ipynb": notebook_04,
    "05_sparse_jacobians.ipynb": notebook_05,
    "06_hessians.ipynb": notebook_06,
}


def build(name: str, execute: bool = True) -> tuple[float, int]:
    nb = nbformat.v4.new_notebook()
    nb.cells = NOTEBOOKS[name]()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    seconds = 0.0
    if execute:
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        seconds = time.perf_counter() - start
    path = HERE / name
    nbformat.write(nb, path)
    size = path.stat().st_size
    if size >= MAX_BYTES:
        raise SystemExit(f"{name} is {size:,} bytes, over the {MAX_BYTES:,}-byte limit")
    return seconds, size


def main(argv: list[str]) -> None:
    execute = "--no-exec" not in argv
    prefixes = [a for a in argv if not a.startswith("--")]
    for name in NOTEBOOKS:
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        seconds, size = build(name, execute)
        print(f"{name}: {seconds:.1f} s, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
