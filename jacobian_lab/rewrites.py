"""What to write in place of a function that cannot run on traced arrays, by its name or its module's.

One table for both refusals: a NumPy (or scipy.special) function without a derivative rule
(`numpy_api.unsupported`), and a SciPy function that converts its input to a plain array
(`tracing.Tracer.__array__`). Each entry is a parenthesis the message appends to "Rewrite it with
supported NumPy operations" or "write that step with NumPy operations".

>>> instead("scipy.linalg.solve")
' (np.linalg.solve)'
>>> instead("numpy.fft.rfft")[:23]  # by its module's entry
' (a DFT of a real x is '
>>> instead("numpy.sinc")
''
"""
from __future__ import annotations

_INSTEAD = {
    "numpy.fft": " (a DFT of a real x is two matrix products: with k = n = np.arange(N), C = np.cos(2 * np.pi * "
                 "np.outer(k, n) / N) and S = np.sin(...), its real part C @ x and its imaginary part -S @ x)",
    "numpy.linalg.eig": " (np.linalg.eigh for a symmetric matrix; a general one's eigenvalues may be complex, which "
                        "jacobian_lab does not differentiate)",
    "scipy.special.zeta": " (Riemann's zeta(x) has no slope in closed form; Hurwitz's zeta(s, q) with a constant s "
                          "has one in q)",
    "scipy.special.zetac": " (zeta(x) - 1 has no slope in closed form; Hurwitz's zeta(s, q) with a constant s has "
                           "one in q)",
    "numpy.linalg.eigvals": " (np.linalg.eigvalsh for a symmetric matrix; a general one's eigenvalues may be "
                            "complex, which jacobian_lab does not differentiate)",
    "scipy.special.logsumexp": " (logsumexp: m = np.max(x); m + np.log(np.sum(np.exp(x - m))))",
    "scipy.special.softmax": " (softmax: e = np.exp(x - np.max(x)); e / np.sum(e))",
    "scipy.special.log_softmax": " (log_softmax: z = x - np.max(x); z - np.log(np.sum(np.exp(z))))",
    "scipy.stats": " (a distribution's density in NumPy, its cdf with scipy.special: the normal's is ndtr)",
    "scipy.linalg.solve": " (np.linalg.solve)", "scipy.linalg.inv": " (np.linalg.inv)",
    "scipy.linalg.det": " (np.linalg.det)", "scipy.linalg.cholesky": " (np.linalg.cholesky)",
    "scipy.linalg.cho_factor": " (np.linalg.cholesky)", "scipy.linalg.cho_solve": " (np.linalg.solve(A, b))",
    "scipy.linalg.solve_triangular": " (np.linalg.solve)",
    "scipy.spatial.pdist": " (pairwise distances: np.linalg.norm(P[:, None] - P[None, :], axis=-1))",
    "scipy.spatial.cdist": " (np.linalg.norm(P[:, None] - Q[None, :], axis=-1))",
    "scipy.signal.convolve": " (np.convolve)", "scipy.ndimage.convolve": " (np.convolve, or shifted slices summed)",
    "scipy.signal.lfilter": " (an IIR filter as a loop writing y[i] into y = np.zeros_like(x); an FIR filter with "
                            "np.convolve)",
    "scipy.ndimage": " (the kernel's weights times shifted slices of np.pad(x, ...), summed; or np.convolve along "
                     "one axis)",
    "scipy.ndimage.map_coordinates": " (linear interpolation: i = np.floor(r).astype(int), then (1 - (r - i)) * "
                                     "x[i] + (r - i) * x[i + 1], per axis)",
    "scipy.linalg.expm": " (for a symmetric A, w, V = np.linalg.eigh(A) and V @ np.diag(np.exp(w)) @ V.T)",
    "scipy.linalg.eigh": " (np.linalg.eigh)", "scipy.linalg.eigvalsh": " (np.linalg.eigvalsh)",
    "scipy.linalg.svd": " (np.linalg.svd)", "scipy.linalg.pinv": " (np.linalg.pinv)",
    "scipy.linalg.qr": " (np.linalg.qr, whose default is SciPy's mode='economic')",
    "scipy.linalg.lstsq": " (np.linalg.lstsq)", "scipy.linalg.norm": " (np.linalg.norm)",
    "scipy.special.multigammaln": " (multigammaln(a, d) = d (d - 1) / 4 log(pi) + sum over j < d of "
                                  "scipy.special.gammaln(a - j / 2), which differentiates)",
    "scipy.linalg.lu_factor": " (np.linalg.solve(A, b), which factorizes A)",
    "scipy.linalg.lu_solve": " (np.linalg.solve(A, b), which factorizes A)",
    "scipy.sparse": " (a matrix of traced values: M = np.zeros_like(x, shape=(m, n)), then np.add.at(M, (rows, "
                    "cols), values); A @ x with a scipy.sparse matrix A of constants is differentiated)",
    "scipy.integrate.trapezoid": " (np.trapezoid)",
    "scipy.integrate.simpson": " (np.trapezoid, or Simpson's weights @ y)",
    "scipy.integrate.cumulative_trapezoid": " (np.cumsum((y[1:] + y[:-1]) / 2 * dx))",
    "scipy.integrate.solve_ivp": " (a fixed-step scheme such as RK4 in a loop; or give the solver the Jacobian of "
                                 "the right-hand side: jac=jl.jit(jl.jacobian(rhs)))",
    "scipy.integrate.odeint": " (a fixed-step scheme such as RK4 in a loop; or give the solver the Jacobian of the "
                              "right-hand side: Dfun=jl.jit(jl.jacobian(rhs)))",
    "scipy.sparse.__mul__": " (A @ x for the matrix product of a scipy.sparse matrix, which is differentiated)",
    "scipy.sparse.dot": " (A @ x for a scipy.sparse matrix A, which is differentiated)",
    "scipy.sparse.__truediv__": " (A.toarray() / x elementwise)",
    "scipy.interpolate": " (np.interp interpolates linearly, in the values and the points)",
    "scipy.sparse.multiply": " (A @ x for a matrix product; A.toarray() * x elementwise)",
    "scipy.sparse.spsolve": " (np.linalg.solve(A.toarray(), b))",
}


def instead(name: str) -> str:
    """The entry for the function `name` (module.function, or module.class.method), else for its module, else ''."""
    while name not in _INSTEAD and "." in name:
        name = name.rsplit(".", 1)[0]
    return _INSTEAD.get(name, "")
