"""NumPy functions composed from primitives: derivatives in both modes, values, and FLOP counts.

They live in numpy_composites, numpy_statistics, numpy_quantiles, numpy_histograms, numpy_calculus, numpy_linalg,
numpy_polynomials and numpy_einsum.
"""
import inspect
import math
import re
import warnings

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import Cost, counting
from jacobian_lab.engines import get

from helpers import assert_close, assert_fd_close, central_differences, traced_value

rng = np.random.default_rng(1)
x3, x5, x6 = rng.normal(size=3), rng.normal(size=5), rng.normal(size=6)
x12, x34 = rng.normal(size=12), rng.normal(size=(3, 4))
positive4 = np.abs(rng.normal(size=4)) + 1.5
A = rng.normal(size=(4, 3))
# The values of x34 are at least 3e-3 apart (no ties for sort, quantiles, ptp); x34 with NaNs
# for the nan-reductions; finite, NaN and infinite entries for nan_to_num.
x34_nan = np.where(np.eye(3, 4, 1) > 0, np.nan, x34)
mixed = np.array([0.75, np.nan, -1.25, np.inf, 2.0, -np.inf])
cube = rng.normal(size=(2, 3, 4))

CASES = {
    "diag of a vector": (lambda x: np.diag(x, 1) @ np.ones(4), x3),
    "diag and diagonal of a matrix": (lambda X: np.diag(X) * np.diagonal(X, 1).sum(), x34),
    "roll": (lambda x: np.roll(x, 2) * x + np.roll(x.reshape(3, 4), -1, axis=1).sum(axis=0).sum(), x12),
    "pad modes": (lambda x: np.pad(x, (2, 1)) + np.pad(x, 1, mode="edge").sum() + np.pad(x, 2, mode="reflect").sum(),
                  x3),
    "pad 2-d with a constant": (lambda X: np.pad(X, ((1, 0), (0, 2)), constant_values=3.0) ** 2, x34),
    "pad with constants per side": (lambda X: np.pad(X, ((1, 2), (2, 1)), constant_values=((7.0, 8.0), (9.0, -1.0)))
                                    ** 2 + np.pad(X[0], 1, constant_values=(1.0, 2.0)).sum(), x34),
    "sort": (lambda x: np.sort(x) * np.arange(5.0) + np.sort(x.reshape(1, 5), axis=None), x5),
    "take_along_axis": (lambda X: np.take_along_axis(X, np.argsort(X, axis=1), axis=1), x34),
    "split": (lambda x: np.split(x, 3)[1] * np.array_split(x, 4)[0][0] + np.hsplit(x, [1, 4])[1].sum(), x6),
    "append": (lambda x: np.append(x, x ** 2), x3),
    "diff": (lambda x: np.diff(x) * 2 + np.diff(x, n=2).sum() + np.diff(x, prepend=0.0).sum(), x5),
    "diff along axis 0": (lambda X: np.diff(X, axis=0), x34),
    "var and std": (lambda X: np.var(X) + np.std(X, axis=0) + np.var(X, axis=1, ddof=1, keepdims=True).T[0, :1], x34),
    "average": (lambda X: np.average(X, axis=1, weights=np.arange(1.0, 5.0)) + np.average(X), x34),
    "tensordot and inner": (lambda X: np.tensordot(X, A, axes=([1], [0])).ravel() + np.tensordot(X, X, axes=2)
                            + np.inner(X, X).ravel()[:9], x34),
    "vdot": (lambda X: np.vdot(X, X) * np.inner(X[0], X[1]), x34),
    "dot of stacks": (lambda T: np.dot(T, T[0, 0]).ravel() + np.dot(T[0].T, T).ravel()[:6] + T.dot(A[:, 0]).ravel()[:6]
                      + np.dot(T, T[0].T).ravel()[:6], cube),
    "vector norms": (lambda X: np.linalg.norm(X) + np.linalg.norm(X, axis=1) + np.linalg.norm(X, ord=1, axis=0)[:3]
                     + np.linalg.norm(X, ord=np.inf, axis=1) + np.linalg.norm(X, 3, axis=1), x34),
    "vector norms of negative and fractional orders": (lambda X: np.concatenate([
        np.linalg.norm(X, -1, axis=1), np.linalg.norm(X, -3, axis=0), np.linalg.norm(X, 0.5, axis=1),
        np.linalg.norm(X.ravel(), -2.5).reshape(1)]), x34),
    "matrix norms": (lambda X: np.linalg.norm(X, "fro") + np.linalg.norm(X, 1) + np.linalg.norm(X, np.inf), x34),
    "matrix norms of the singular values": (lambda X: np.stack([
        np.linalg.norm(X, 2), np.linalg.norm(X, -2), np.linalg.norm(X, "nuc"), np.linalg.norm(X.T, 2)]), x34),
    "matrix norms, negative orders and axes in either order": (lambda X: np.concatenate([
        np.linalg.norm(X, -1, axis=(0, 1)).reshape(1), np.linalg.norm(X, -np.inf).reshape(1),
        np.linalg.norm(X, 1, axis=(1, 0), keepdims=True).ravel(), np.linalg.norm(X, np.inf, axis=(-1, 0)).reshape(1),
        np.linalg.norm(cube * X[0, 0], 2, axis=(2, 1)),
        np.linalg.norm(cube * X[0, 1], "nuc", axis=(0, 2), keepdims=True)[0, :, 0]]), x34),
    "value queries": (lambda x: x * (np.argmax(x) + np.any(x > 0) + np.allclose(x, x) + np.count_nonzero(x > 0)), x3),
    "round": (lambda x: x * np.round(x, 1) + np.around(x), x3),
    "real and imag": (lambda x: np.real(x) + np.imag(x), x3),
    "degrees, fabs, float_power": (lambda x: np.deg2rad(x) + np.degrees(x) * np.fabs(x) + np.float_power(x, 1.5),
                                   positive4),
    "ptp": (lambda X: np.ptp(X) + np.ptp(X, axis=1, keepdims=True) * np.ptp(X, axis=0), x34),
    "quantile": (lambda X: np.concatenate([np.quantile(X, [0.1, 0.5, 0.83], axis=1).ravel(),
                                           np.quantile(X, 0.3, axis=0),
                                           np.quantile(X, 1.0, axis=(0, 1), keepdims=True)[0]]), x34),
    "percentile over a tuple of axes": (lambda X: np.percentile(X.reshape(3, 2, 2), [20, 90], axis=(0, 2)).ravel(),
                                        x34),
    "median": (lambda X: np.concatenate([np.median(X, axis=0), np.median(X, axis=1, keepdims=True)[:, 0],
                                         np.median(X).reshape(1), np.median(X[:, :3]).reshape(1)]), x34),
    "nansum and nanmean": (lambda X: np.concatenate([np.nansum(X, axis=1), np.nanmean(X, axis=0),
                                                     (np.nansum(X) * np.nanmean(X)).reshape(1)]), x34_nan),
    "nan_to_num": (lambda x: np.nan_to_num(x, nan=1.5, posinf=3.0, neginf=-3.0) ** 2 + np.nan_to_num(x) * 1e-300,
                   mixed),
    "cov": (lambda X: np.concatenate([np.cov(X).ravel(), np.cov(X, rowvar=False, bias=True).ravel(),
                                      np.cov(X[0], X[1], ddof=0).ravel(), np.cov(X[2]).reshape(1)]), x34),
    "corrcoef": (lambda X: np.concatenate([np.corrcoef(X).ravel(), np.corrcoef(X[0], X[2]).ravel(),
                                           np.corrcoef(X, rowvar=False).ravel()]), x34),
    "convolve": (lambda x: np.concatenate([np.convolve(x[:4], [0.5, -1.0, 2.0]), np.convolve(x[:2], x[2:], "same"),
                                           np.convolve(x[:3], x[3:], "valid")]), x6),
    "correlate": (lambda x: np.concatenate([np.correlate(x[:4], x[4:]), np.correlate(x[:2], x[2:], "full"),
                                            np.correlate(x, [1.0, 2.0], "same")]), x6),
    "polyval": (lambda x: np.polyval(x[:3], x) + np.polyval([1.0, -2.0, 0.5], x) * np.polyval(x, 0.7), x5),
    "sinc": (lambda x: np.sinc(x) * x, x5),
    # einsum: a composite of gathers, sums, multiplies and matmuls
    "einsum matrix product": (lambda X: np.einsum("ij,jk->ik", X, A), x34),
    "einsum, plain operand first": (lambda X: np.einsum("ij,jk->ik", A, X), x34),
    "einsum batched matmul with ...": (lambda C: np.einsum("...ij,...kj->...ik", C, C), cube),
    "einsum ij,ij->": (lambda X: np.einsum("ij,ij->", X, X), x34),
    "einsum ii->i": (lambda X: np.einsum("ii->i", X[:, :3]), x34),
    "einsum ii (trace)": (lambda X: np.einsum("ii", X[:, 1:]), x34),
    "einsum iij->ij": (lambda x: np.einsum("iij->ij", x.reshape(2, 2, 3)), x12),
    "einsum ij->ji": (lambda X: np.einsum("ij->ji", X), x34),
    "einsum i,j->ij": (lambda x: np.einsum("i,j->ij", x, x ** 2), x3),
    "einsum implicit output": (lambda X: np.einsum("kj,ij", X, X ** 2), x34),  # -> "ik": sorted, not "ki"
    "einsum three operands": (lambda X: np.einsum("ij,jk,kl->il", X, A, X), x34),
    "einsum label summed in one operand": (lambda C: np.einsum("ijk,jl->il", C, A[:3]), cube),
    "einsum ...i,...i->... broadcasting": (lambda C: np.einsum("...i,...i->...", C, C[:1]), cube),
    "einsum size-1 label broadcast": (lambda X: np.einsum("ij,jk->ik", X[:, :1], X), x34),
    "einsum 0-d operands": (lambda x: np.einsum(",i->i", x[0], x) + np.einsum("...,...", x[1], x[2]), x3),
    "einsum interleaved form": (lambda X: np.einsum(X, [0, 1], A, [1, 2], X, [2, Ellipsis])
                                + np.einsum(X, [1, 0], X, [1, 2]).sum(), x34),
    # more index maps and stacking
    "fliplr, flipud, rot90": (lambda X: np.fliplr(X) * np.flipud(X) + np.rot90(X, 2) + np.rot90(X.T, -1), x34),
    "tril and triu": (lambda X: np.tril(X) * 2.0 + np.triu(X, 1) + np.tril(X.reshape(2, 2, 3), -1).sum(), x34),
    "delete and resize": (lambda X: np.delete(X, [0, 2], axis=1).ravel() * np.resize(X, 6).sum()
                          + np.delete(X, 1).sum(), x34),
    "column_stack, dstack, atleast_3d": (lambda x: np.column_stack([x[:2], x[2:4], x[3:].reshape(2, 1)]).ravel()
                                         + np.dstack([x[:2], x[2:4] ** 2]).sum() + np.atleast_3d(x[0]).sum(), x5),
    "meshgrid": (lambda x: np.meshgrid(x[:2], x[2:], indexing="xy")[0] * np.meshgrid(x[:2], x[2:], indexing="ij")[1].T
                 + np.meshgrid(x[:2], x[2:], sparse=True)[1]
                 + np.meshgrid(x[0], x[2:], np.arange(2.0))[1][:, 0] * np.meshgrid(np.ones(2), x[4])[0], x5),
    "select": (lambda x: np.select([x > 0.5, x < -0.5], [x ** 2, -x], default=x * 3) + np.select([x > 0], [x]), x6),
    # products of several factors
    "kron": (lambda X: np.kron(X[:2, :2], X[1:, 1:]).ravel() + np.kron(X[0], [1.0, -2.0]).sum(), x34),
    "cross": (lambda X: np.cross(X[:, :3], X[:, 1:]).ravel() + np.cross(X[:3, :2], X[:3, 2:], axis=0).sum()
              + np.cross(X[0, :3], [1.0, 2.0, 3.0]).sum(), x34),
    "matrix_power": (lambda X: np.linalg.matrix_power(X[:, :3], 5) + np.linalg.matrix_power(X[:, 1:], 2)
                     + np.linalg.matrix_power(X[:, :3] + 3 * np.eye(3), -3) + np.linalg.matrix_power(X[:, :3], 0), x34),
    "multi_dot": (lambda X: np.linalg.multi_dot([X[0], X.T, X, A]) + np.linalg.multi_dot([X[:2], A, X[1:, :3].T]).sum(),
                  x34),
    # integration, interpolation, nan-extremes
    "trapezoid": (lambda X: np.trapezoid(X) + np.trapezoid(X, dx=0.5, axis=0).sum()
                  + np.trapezoid(X[0], X[1] ** 2 + np.arange(4.0) * 3) + np.trapezoid(X, x=[0, 1, 3, 4.5]), x34),
    "interp": (lambda x: np.interp(x * 1.5, np.linspace(-2, 2, 6), np.sin(np.linspace(-2, 2, 6)))
               + np.interp([-3.0, -0.3, 0.1, 2.0], np.linspace(-2, 2, 4), x[:4] ** 2).sum()
               + np.interp(x, [-2.0, 0.0, 2.5], x[:3], left=-1.0, right=x[4])
               + np.interp([-2.5, 0.2, 1.1, 3.0], np.cumsum(np.exp(x[:4])) - 2.0, x[2:]).sum(), x6),
    # angles on a circle: x and xp modulo the period, the samples sorted and joined across it
    "interp with a period": (lambda x: np.interp(x * 100.0, [350.0, 10.0, 0.0, 100.0, 200.0], x[:5], period=-360)
                             + np.interp([-5.0, 45.0, 375.0], x[1:] * 50.0, x[:5] ** 2, period=x[0] + 7.0).sum(), x6),
    "nanmax and nanmin": (lambda X: np.nanmax(X) + np.nanmin(X, axis=1).sum() + np.nanmax(X, axis=0, keepdims=True),
                          x34_nan),
    # still more index maps: gathers of flat positions
    "diagflat, dsplit, rollaxis": (lambda C: np.concatenate([
        np.diagflat(C[0, :2], -1).ravel(), np.diagflat(C[1, 1:]).ravel(), np.dsplit(C, [1, 3])[1].ravel(),
        np.rollaxis(C, 2, 1).ravel() * np.rollaxis(C, -1).ravel()]), cube),
    "broadcast_arrays": (lambda X: np.broadcast_arrays(X[:, :1], X[0], 2.0)[0] * np.broadcast_arrays(X[:, :1], X[0])[1]
                         + np.broadcast_arrays(X, 2.0)[1], x34),
    "choose": (lambda X: np.choose([[0, 2, 1, 2], [1, 0, 0, 2], [2, 1, 0, 0]], [X, X ** 2, X[0]])
               + np.choose([0, 5, -1, 2], X, mode="wrap") + np.choose([3, 0, 1, 1], [X[1], 1.5, X[2]], mode="clip"),
               x34),
    "compress and extract": (lambda X: np.concatenate([
        np.compress([True, False, True], X, axis=0).ravel(), np.compress([0, 1, 1], X[1]),
        np.compress([1, 0, 1], X, axis=None), np.extract(np.arange(12).reshape(3, 4) % 3 == 0, X)]), x34),
    "partition": (lambda X: np.concatenate([np.partition(X, 1, axis=1).ravel(), np.partition(X, [0, 2], axis=0).ravel(),
                                            np.partition(X, -3, axis=None), np.partition(X[0], (1, 2))]), x34),
    "trim_zeros": (lambda x: np.concatenate([np.trim_zeros(np.pad(x, (2, 1))), np.trim_zeros(np.pad(x, 1), "b"),
                                             np.trim_zeros(np.pad(x, 2), trim="F"),
                                             np.trim_zeros(np.pad(x.reshape(1, 5), 1), axis=1).ravel(),
                                             np.trim_zeros(np.pad(x.reshape(1, 5), 1)).ravel()]), x5),
    "insert": (lambda X: np.concatenate([np.insert(X, 1, X[:, 0] * 2, axis=1).ravel(), np.insert(X, [0, 3, 3], 5.0),
                                         np.insert(X, slice(1, 3), [[-1.0], [2.0]], axis=0).ravel(),
                                         np.insert(X, [1], X[:, 2:3] ** 2, axis=1).ravel(),
                                         np.insert(X[0], 2, X[1, :2])]), x34),
    "block": (lambda X: np.block([[X[:, :2], X], [np.ones((1, 2)), X[:1] ** 2]]).ravel()[::2]
              + np.block([X[0], 1.0, X[1, :1]]).sum() + np.block(X).sum(), x34),
    # differences, integrals, evenly spaced values
    "ediff1d": (lambda X: np.ediff1d(X, to_begin=[-1.0, 2.0], to_end=X[0, :2] ** 2)
                * np.ediff1d(X[::-1], to_end=3.0).sum() + np.ediff1d(X[0], to_begin=X[1, 0]).sum(), x34),
    "gradient": (lambda X: np.concatenate([np.gradient(X[0]), np.gradient(X[1], 0.5, edge_order=2),
                                           np.gradient(X[2], [0.0, 1.0, 1.5, 3.0]),
                                           np.gradient(X[2], np.array([0, 1, 3, 4]), edge_order=2),
                                           np.gradient(X[1], [0.0, 2.0, 4.0, 6.0]), np.gradient(X, axis=0).ravel(),
                                           np.gradient(X, 2.0, [0, 1, 3, 4.5])[1].ravel(),
                                           np.gradient(X, axis=(1, 0))[1].ravel()]), x34),
    # traced spacings and coordinates: NumPy's weights computed from them (the uneven ones' for coordinates)
    "gradient with traced spacings": (lambda X: np.concatenate([
        np.gradient(X[0], np.cumsum(np.exp(X[1]))), np.gradient(X[0], np.cumsum(np.exp(X[2])), edge_order=2),
        np.gradient(X[1], X[2, 0] ** 2 + 0.5), np.gradient(X[1], X[2, 0] ** 2 + 0.5, edge_order=2),
        np.gradient(X[:2], 0.5, np.cumsum(np.exp(X[2])))[1].ravel(),
        # a plain integer f is float64 first, as NumPy makes it: its uint8 differences would wrap
        np.gradient(np.array([0, 200, 10, 250], dtype=np.uint8), X[0, 0] ** 2 + 1.0),
        np.gradient(np.array([1, 4, 9, 16]), np.cumsum(np.exp(X[1])))]), x34),
    "linspace, logspace, geomspace": (lambda x: np.concatenate([
        np.linspace(x[0], x[1], 5), np.linspace(x[:2], 3.0, 4, endpoint=False, axis=1).ravel(),
        np.linspace(x[2], x[3], 1), np.linspace(1.0, x[2], 3, retstep=True)[1].reshape(1),
        np.linspace(x[:2], x[3:], 3, axis=-1, dtype=np.float64).ravel(),
        np.logspace(x[0], x[1], 4), np.logspace(x[:2], 1.0, 3, base=[2.0, 3.0], axis=1).ravel(),
        np.logspace(0.5, x[1], 3, base=x[2] + 3.0), np.geomspace(x[3] ** 2 + 1.0, 5.0, 4),
        np.geomspace(-x[:2] ** 2 - 1.0, -3.0, 3, axis=1).ravel(), np.geomspace(2.0, x[4] ** 2 + 1, 3, endpoint=False)]),
        x5),
    "logaddexp2, modf, fix, real_if_close": (lambda x: np.logaddexp2(x, x[::-1] * 2) + np.logaddexp2(x, 0.5)
                                             + np.modf(x * 3)[0] * np.modf(x * 3)[1] + x * np.fix(x * 3)
                                             + np.real_if_close(x) * 2.0, x6),
    "unwrap": (lambda x: np.concatenate([np.unwrap(np.array([0.1, 2.0, 5.5, -1.0, 3.0, 9.0]) + x * 0.1),
                                         np.unwrap(x34 * 4 + x[:4], axis=0).ravel(),
                                         np.unwrap(x * 3, period=x[0] ** 2 + 4.0), np.unwrap(x * 5, discont=4.0)]), x6),
    # more nan-functions: NaNs ignored, as NumPy does
    "nancumsum, nancumprod, nanprod": (lambda X: np.concatenate([
        np.nancumsum(X, axis=1).ravel(), np.nancumprod(X, axis=0).ravel(), np.nancumsum(X), np.nancumprod(X[0]),
        np.nanprod(X, axis=1), np.nanprod(X, keepdims=True)[0]]), x34_nan),
    "nan-reductions with where= and initial=": (lambda X: np.concatenate([
        np.nansum(X, axis=1, where=[True, True, False, True], initial=1.5), np.nanmean(X, axis=0, where=X > -0.5),
        np.nanprod(X, axis=0, where=[[True], [False], [True]], initial=0.5), np.nanmean(X, axis=1, dtype=np.float64),
        np.nanmax(X, axis=1, initial=0.0), np.nanmin(X, axis=0, where=[[True], [False], [True]], initial=5.0),
        np.nanvar(X, axis=1, where=[True, True, False, True]), np.nanstd(X, axis=0, ddof=1, dtype=np.float64),
        np.nanvar(X, axis=1, mean=np.nanmean(X, axis=1, keepdims=True) * 0.5)]), x34_nan),
    "nanvar and nanstd": (lambda X: np.concatenate([
        np.nanvar(X, axis=1), np.nanstd(X, axis=0, ddof=1, keepdims=True)[0], np.nanvar(X, correction=1).reshape(1),
        np.nanstd(X).reshape(1)]), x34_nan),
    "nanmedian": (lambda X: np.concatenate([np.nanmedian(X, axis=0), np.nanmedian(X, axis=1, keepdims=True)[:, 0],
                                            np.nanmedian(X).reshape(1), np.nanmedian(X[:, :3]).reshape(1)]), x34_nan),
    "nanquantile and nanpercentile": (lambda X: np.concatenate([
        np.nanquantile(X, [0.1, 0.5, 0.83], axis=1).ravel(), np.nanquantile(X, 0.3, axis=0),
        np.nanquantile(X, 1.0, axis=(0, 1), keepdims=True)[0], np.nanpercentile(X, [20, 90], axis=0).ravel(),
        np.nanpercentile(X.reshape(3, 2, 2), 35.0, axis=(0, 2))]), x34_nan),
    # polynomials
    "vander": (lambda x: np.concatenate([np.vander(x).ravel(), np.vander(x[:3], 4, increasing=True).ravel(),
                                         np.vander(x, 1).ravel(), np.vander(x[:2], 2).ravel()]), x5),
    "polyder and polyint": (lambda x: np.concatenate([
        np.polyder(x), np.polyder(x, 2), np.polyder(x, 0), np.polyint(x), np.polyint(x, 2, k=x[:2] * 3),
        np.polyint(x, 3, k=2.0)]), x5),
    "polyadd, polysub, polymul": (lambda x: np.concatenate([
        np.polyadd(x[:2], x), np.polyadd(x, [1.0, 2.0]), np.polysub(x[3:], x), np.polysub(x, x[::-1]),
        np.polymul(x[:2], x), np.polymul(x, [2.0, -1.0, 0.5]),
        np.polymul(x * [0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 2.0, 3.0])]), x5),  # leading zeros dropped, as NumPy's
    # NumPy 2's names: the aliases and the gufuncs matvec and vecmat (through __array_ufunc__)
    **({"linalg tensordot and cross": (lambda X: np.linalg.tensordot(X, A, axes=1).ravel()
                                       + np.linalg.tensordot(X, X, axes=([1], [1])).ravel()[:9]
                                       + np.linalg.cross(X[:, :3], X[:, 1:]).ravel()[:9]
                                       + np.linalg.cross(X[:, :3].T, X[:, 1:].T, axis=0).ravel()[:9], x34)}
       if hasattr(np.linalg, "cross") else {}),
    **({"matvec and vecmat": (lambda X: np.concatenate([
        np.matvec(X, X[0]), np.matvec(X[:, :3], [1.0, -2.0, 0.5]), np.vecmat(X[:, 0], X),
        np.vecmat(X[0, :2], X.reshape(2, 2, 3)).ravel(), np.matvec(X.reshape(3, 2, 2), X[:1, :2]).ravel()]), x34)}
       if hasattr(np, "matvec") else {}),
    # functions applied piece by piece, and weighted counts
    "apply_along_axis": (lambda X: np.apply_along_axis(lambda v: v ** 2 * v[0], 1, X)
                         + np.apply_along_axis(lambda v: np.outer(v, v[:2]), 0, X).sum(axis=(0, 1)), x34),
    "apply_over_axes": (lambda X: np.apply_over_axes(np.sum, X.reshape(2, 3, 2) ** 2, [0, 2]), x12),
    "piecewise": (lambda x: np.piecewise(x, [x < -0.5, x > 0.5], [lambda v: v ** 2, np.sin, lambda v: v * 3])
                  + np.piecewise(x, [x < 0.5, x < 0], [lambda v: v, -2.0]) * x, x12),
    "bincount and histogram weights": (lambda x: np.concatenate([
        np.bincount([0, 2, 2, 5, 1], weights=x[:5] ** 2, minlength=7),
        np.histogram(np.linspace(-1, 1, 6), bins=3, weights=x[6:])[0],
        np.histogram(x12[:6], bins=[-2, -0.5, 0, 0.7, 3], weights=np.exp(x[6:]), density=True)[0]]), x12),
    # unique: repeats built from the same entries stay repeats under a small step, so the
    # differences see each unique value move with its first occurrence
    "unique": (lambda x: np.concatenate([
        np.unique(np.concatenate([x, x[::-1], x[:2] ** 2])) ** 2,
        np.unique(np.concatenate([x[2:], x]), return_counts=True)[1] * np.unique(np.concatenate([x[2:], x])),
        np.unique(np.concatenate([x[3:], x]), return_inverse=True)[0][np.unique(x[[1, 4, 1]], return_inverse=True)[1]],
        np.unique(np.stack([x, x[::-1], x]).reshape(3, 5), equal_nan=False, return_index=True)[0]]), x5),
    "unique along an axis": (lambda X: np.concatenate([
        np.unique(np.concatenate([X, X[:2], X[1:2]]), axis=0).ravel(),
        np.unique(np.concatenate([X[:, 2:], X, X[:, :1]], axis=1), axis=1, return_counts=True)[0].ravel(),
        np.unique(np.stack([X, X[::-1], X]), axis=-3).ravel()[::5]]), x34),
    # polyfit: in y (one column or two), in the weights and in x
    "polyfit": (lambda v: np.concatenate([
        np.polyfit(np.linspace(-1, 1, 6), v[:6], 3), np.polyfit(np.linspace(-1, 1, 6), v.reshape(6, 2), 2).ravel(),
        np.polyfit(np.linspace(-1, 1, 6) + 0.1 * v[6:], v[:6], 2, w=v[6:] ** 2 + 0.5),
        np.polyfit(np.arange(6), v[6:], 0)]), x12),
    "polyfit with full=True and cov": (lambda v: np.concatenate([
        *np.polyfit(np.linspace(-1, 1, 6), v[:6], 2, full=True)[:2],
        np.polyfit(np.linspace(-1, 1, 6) + 0.1 * v[6:], v[:6], 2, full=True)[3],
        np.polyfit(np.linspace(-1, 1, 6), v[:6], 2, cov=True)[1].ravel(),
        np.polyfit(np.linspace(-1, 1, 6) + 0.1 * v[6:], v[:6], 1, w=v[6:] ** 2 + 0.5, cov="unscaled")[1].ravel(),
        np.polyfit(np.linspace(-1, 1, 6), v.reshape(6, 2), 1, cov=True)[1].ravel()]), x12),
    # the edges NumPy spaces from a traced sample's min to its max, and the densities that divide by them
    "histogram edges that follow the sample": (lambda x: np.concatenate([
        np.histogram(x, bins=4)[1], np.histogram(x, bins="sturges", density=True)[0],
        np.histogram(x[:6], bins=3, weights=x[6:], density=True)[0], np.histogram2d(x[:6], x[6:], bins=[2, 3])[2],
        np.histogramdd(x.reshape(4, 3), bins=2, range=[None, (-2, 2), None], density=True)[0].ravel(),
        *np.histogramdd(x.reshape(4, 3), bins=2)[1]]), x12),
    # two- and D-dimensional histograms of traced weights (x12's entries as points, in pairs or triples)
    "histogram2d and histogramdd weights": (lambda v: np.concatenate([
        np.histogram2d(x12[:6], x12[6:], bins=2, weights=v[:6])[0].ravel(),
        np.histogram2d(x12[:6], x12[6:], bins=[[-2, 0, 0.5, 2], 3], range=[None, (-1, 1)], weights=np.exp(v[6:]),
                       density=True)[0].ravel(),
        np.histogramdd(x12.reshape(4, 3), bins=(2, 1, 2), weights=v[:4] ** 2)[0].ravel(),
        np.histogramdd((x12[:4], x12[4:8]), bins=[[-1, 0, 1], 2], weights=v[8:], density=True)[0].ravel()]), x12),
}
# NumPy 2's array-API names
if all(hasattr(np, name) for name in ("vecdot", "matrix_transpose", "unstack")):
    CASES.update({
        "matrix_transpose": (lambda X: np.matrix_transpose(X.reshape(3, 2, 2)) * np.linalg.matrix_transpose(X[:2, :2]),
                             x34),
        "vecdot": (lambda X: np.vecdot(X, X[0]) + np.linalg.vecdot(X[:, :3], X[:, 1:], axis=0)[:1], x34),
        "vector_norm": (lambda X: np.concatenate([
            np.linalg.vector_norm(X).reshape(1), np.linalg.vector_norm(X, axis=1, ord=1),
            np.linalg.vector_norm(X.reshape(3, 2, 2), axis=(0, 2), ord=np.inf),
            np.linalg.vector_norm(X, axis=(0, 1), ord=3, keepdims=True)[0]]), x34),
        "matrix_norm": (lambda X: np.concatenate([np.linalg.matrix_norm(X.reshape(3, 2, 2)),
                                                  np.linalg.matrix_norm(X, ord=1).reshape(1),
                                                  np.linalg.matrix_norm(X.reshape(2, 2, 3), ord=np.inf),
                                                  np.linalg.matrix_norm(X.reshape(2, 3, 2), ord=2),
                                                  np.linalg.matrix_norm(X.reshape(3, 2, 2), ord=-2, keepdims=True)[:, 0, 0],
                                                  np.linalg.matrix_norm(X.reshape(2, 2, 3), ord="nuc")]), x34),
        "linalg matmul, outer, trace, diagonal": (lambda X: np.linalg.matmul(X, X.T).ravel()[:4]
                                                  + np.linalg.outer(X[0], X[1]).ravel()[4:8]
                                                  + np.linalg.trace(X.reshape(3, 2, 2), offset=0)[:1]
                                                  + np.linalg.diagonal(X.reshape(2, 2, 3), offset=1).ravel(), x34),
        "unstack": (lambda X: np.unstack(X)[1] * np.unstack(X, axis=1)[2][0], x34),
        "cumulative_sum and cumulative_prod": (lambda X: np.cumulative_sum(X, axis=1, include_initial=True)[:, :4]
                                               * np.cumulative_prod(X, axis=0) + np.cumulative_prod(X[0]).sum()
                                               + np.cumulative_sum(X[1, 1], include_initial=True).sum()  # 0-d: one
                                               * np.cumulative_prod(X[2, 0])[0], x34),
        "unique_values, unique_counts, unique_inverse, unique_all": (lambda x: np.concatenate([
            np.unique_values(np.concatenate([x, x[:3]])) * 2.0,
            np.unique_counts(np.concatenate([x, x[2:]])).values * np.unique_counts(np.concatenate([x, x[2:]])).counts,
            np.unique_inverse(np.concatenate([x[::-1], x])).values[np.unique_inverse(x).inverse_indices] ** 2,
            np.unique_all(np.concatenate([x, x[1:4]])).values * np.unique_all(x[[0, 3, 0]]).values.sum()]), x5),
    })


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", CASES)
def test_composite_matches_finite_differences(name, mode):
    f, x = CASES[name]
    assert_fd_close(jl.jacobian(f, x, mode=mode), central_differences(f, x), name)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", CASES)
def test_sparse_jacobian_holds_every_entry_of_the_composite(name, mode):
    """The pattern read from the tape holds every nonzero, and the compressed seeds reproduce the
    dense Jacobian of the same mode bit for bit (where it is finite: NaN cases aside)."""
    f, x = CASES[name]
    J = jl.jacobian(f, x, mode=mode, flat=True)
    finite = np.isfinite(J)
    assert np.all(jl.sparsity(f, x).toarray()[finite & (J != 0)])
    S = jl.sparse_jacobian(f, x, mode=mode).toarray()
    np.testing.assert_array_equal(np.where(finite, S, 0.0), np.where(finite, J, 0.0))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", CASES)
def test_sparse_hessian_of_the_composites_squared_norm(name, mode):
    """sum(f(x)**2): its gradient sweeps back through every rule the composite uses, so the Hessian's
    pattern tests their structures in reverse too; values equal the dense Hessian of the same order."""
    f, x = CASES[name]

    def g(v):
        return np.sum(f(v) ** 2)

    H = jl.hessian(g, x, mode=mode).reshape(x.size, x.size)
    finite = np.isfinite(H)
    S = jl.sparse_hessian(g, x, mode=mode).toarray()
    np.testing.assert_array_equal(np.where(finite, S, 0.0), np.where(finite, H, 0.0))


@pytest.mark.parametrize("f", [
    lambda x: np.roll(x, 1), lambda x: np.pad(x, 2), lambda x: np.sort(x), lambda x: np.diag(x),
    lambda x: np.split(x, 5)[2], lambda x: np.append(x, x), lambda x: np.pad(x, 1, mode="wrap"),
    lambda x: np.tril(np.stack([x, x])), lambda x: np.rot90(x.reshape(1, 5)), lambda x: np.delete(x, 3),
    lambda x: np.resize(x, (3, 4)), lambda x: np.column_stack([x, x]), lambda x: np.meshgrid(x, x)[1],
])
def test_index_maps_move_data_for_free(f):
    assert jl.count_flops(f, x5) == Cost(0, 0)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", [
    lambda x: np.diag(x), lambda x: np.pad(x, 100), lambda x: np.pad(x, (1, 2), constant_values=(3.0, 4.0)),
    lambda x: np.tril(x.reshape(2, 3), -1), lambda x: np.triu(x.reshape(3, 2)), lambda x: np.diagflat(x),
])
def test_index_maps_with_constant_fill_cost_no_derivative_work(f, mode):
    """The fill values are constants: reverse mode once summed the cotangents of every padded cell into
    one shared slot (782,100 flops for the Jacobian of np.diag of 30 values), then dropped them."""
    x = np.arange(1.0, 7.0)
    with counting() as c:
        J = jl.jacobian(f, x, mode=mode)
    assert c.total() == Cost(0, 0)
    np.testing.assert_array_equal(J, jl.jacobian(f, x, mode="forward" if mode == "reverse" else "reverse"))
    np.testing.assert_array_equal(J.reshape(-1, x.size) @ x + np.ravel(f(0 * x)), np.ravel(f(x)))  # affine


def test_products_refuse_axes_of_different_lengths_as_numpy_does():
    """Summed axes were reshaped by a's length alone: a (2, 3) against a (3, 2) over both axes gave a
    number where NumPy refuses."""
    a, b = np.ones((2, 3)), np.ones((3, 2))
    for f, x in ((lambda v: np.tensordot(v, b, axes=([0, 1], [0, 1])), a),
                 (lambda v: np.tensordot(v, v, axes=([0], [1])), a), (lambda v: np.tensordot(v, v, axes=([0, 1], [0])), a),
                 (lambda v: np.dot(v, np.ones(3)), cube), (lambda v: np.dot(v, np.ones((2, 3, 2))), cube),
                 (lambda v: np.inner(v, v.T), a), (lambda v: np.inner(v, np.ones((5, 2))), cube),
                 (lambda v: np.inner(v, np.ones(2)), np.ones(3)), (lambda v: np.dot(v, np.ones(2)), a),
                 (lambda v: np.dot(v, v), a), (lambda v: np.dot(v, np.ones((2, 3))), np.ones(3))):
        with pytest.raises(ValueError) as numpy_error:
            f(x)
        with pytest.raises(ValueError, match=re.escape(str(numpy_error.value))):
            jl.jacobian(f, x)


@pytest.mark.parametrize("f", [lambda v: np.stack([v, v[:2]]), lambda v: np.stack([]), lambda v: np.trace(v)],
                         ids=["stack of different shapes", "stack of nothing", "trace of a vector"])
def test_shape_errors_read_as_numpys(f):
    with pytest.raises(ValueError) as numpy_error:
        f(x3)
    with pytest.raises(ValueError, match=f"^{re.escape(str(numpy_error.value))}$"):
        jl.jacobian(f, x3)


def test_diff_of_a_negative_order_is_refused_as_in_numpy():
    """n = -1 ran no difference at all, so x came back with the identity as its Jacobian."""
    with pytest.raises(ValueError, match="order must be non-negative but got -1"):
        jl.jacobian(lambda v: np.diff(v, n=-1), x5)
    np.testing.assert_array_equal(jl.jacobian(lambda v: np.diff(v, n=0), x5), np.eye(5))  # n = 0 is x itself


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_products_over_empty_axes_are_zero(mode):
    for f, x in ((lambda v: np.tensordot(v, v, axes=([0], [0])), np.zeros((0, 2))),
                 (lambda v: np.inner(v.T, v.T), np.zeros((0, 3)))):
        assert jl.jacobian(f, x, mode=mode).shape == np.shape(f(x)) + x.shape
        np.testing.assert_array_equal(jl.vjp(f, x)[0], np.zeros(np.shape(f(x))))


def test_statistics_count_their_arithmetic():
    # var over L = 12: mean (12), subtract (12), square (12), sum (11), divide (1)
    assert jl.count_flops(np.var, x34) == Cost(48, 0)
    # std: its square root, with a comparison and two selects for slope 0 at a zero variance (as a norm's)
    assert jl.count_flops(np.std, x34) == Cost(48 + 3, 1)
    # diff of 5 values: 4 subtractions
    assert jl.count_flops(np.diff, x5) == Cost(4, 0)


def test_new_ufuncs_are_transcendentals():
    for f in (np.log2, np.log10, np.exp2, np.cbrt, np.arcsinh, np.arctanh):
        assert jl.count_flops(f, np.full(7, 0.5)) == Cost(0, 7)
    assert jl.count_flops(lambda x: np.arctan2(x, 2.0) + np.hypot(x, 1.0), np.ones(3)) == Cost(3, 6)


def test_sort_follows_the_values_not_the_positions():
    x = np.array([3.0, 1.0, 2.0])
    J = jl.jacrev(np.sort)(x)
    np.testing.assert_array_equal(J, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("values", ["distinct", "ties", "nan", "signed zeros", "infinities"])
def test_a_sorts_order_is_the_stable_one_whether_or_not_elements_repeat(values):
    """The order comes from the unstable sort, seven times faster at n = 1e5, where no two elements compare equal
    and none is NaN: the stable sort's, which it takes otherwise."""
    from jacobian_lab.rules.sorting import argsort

    generator = np.random.default_rng(len(values))
    for _ in range(200):
        x = generator.standard_normal(tuple(generator.integers(1, 6, size=generator.integers(1, 4))))
        some = generator.random(x.shape) < 0.3
        x = {"distinct": x, "ties": np.round(x), "nan": np.where(some, np.nan, x),
             "signed zeros": np.where(some, np.where(x > 0, 0.0, -0.0), x),
             "infinities": np.where(some, np.copysign(np.inf, x), x)}[values]
        for axis in range(x.ndim):
            np.testing.assert_array_equal(argsort(x, axis=axis), np.argsort(x, axis=axis, kind="stable"))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_sorts_gradient_moves_cotangents_back_by_the_inverse_permutation(axis):
    """The sweep inverts the order with one scatter (it sorted the order again): argsort's answer, ties too."""
    from jacobian_lab.rules.sorting import inverse_permutation

    x = np.round(rng.standard_normal((3, 4, 5)), 1)  # ties
    order = np.argsort(x, axis=axis, kind="stable")
    np.testing.assert_array_equal(inverse_permutation(order, axis=axis), np.argsort(order, axis=axis))
    w = rng.standard_normal(x.shape)
    g = jl.grad(lambda x: np.sum(np.sort(x, axis=axis) * w))(x)
    np.testing.assert_array_equal(g, np.take_along_axis(w, np.argsort(order, axis=axis), axis=axis))


def test_unsupported_norm_and_pad_variants_are_named():
    with pytest.raises(ValueError, match="Invalid norm order 'fro' for vectors"):  # NumPy's error
        jl.jacrev(lambda x: np.linalg.norm(x, "fro"))(x3)
    with pytest.raises(NotImplementedError, match="mode='mean'"):
        jl.jacrev(lambda x: np.pad(x, 1, mode="mean"))(x3)
    # odd reflection is 2·edge − mirror, not a move of entries: as a gather it gave [5, 6, 1, ...] for
    # NumPy's [-1, 0, 1, ...]
    for mode in ("reflect", "symmetric"):
        with pytest.raises(NotImplementedError, match=f"mode='{mode}' and reflect_type='odd'"):
            jl.jacrev(lambda x: np.pad(x, (2, 0), mode=mode, reflect_type="odd"))(x6)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_the_zero_norm_counts_nonzeros_and_has_no_derivative(mode):
    v = np.array([0.0, 1.5, -2.0, 0.0])
    f = lambda x: np.linalg.norm(x, 0) * x + np.linalg.norm(x.reshape(2, 2), 0, axis=1).sum()  # noqa: E731
    if hasattr(np.linalg, "vector_norm"):
        np.testing.assert_array_equal(traced_value(lambda x: np.linalg.vector_norm(x, ord=0), v), 2.0)
    np.testing.assert_array_equal(traced_value(f, v), f(v))
    np.testing.assert_array_equal(jl.jacobian(f, v, mode=mode), 2.0 * np.eye(4))


def test_padding_keeps_float32_values_float32():
    x = np.ones(3, np.float32)
    y, y_dot = get("forward").jvp(lambda v: np.pad(v, 1) + np.diag(v).sum(), x, np.ones((1, 3), np.float32))
    assert y.dtype == np.pad(x, 1).dtype == np.float32 and y_dot.dtype == np.float32


# --- values: the composites compute NumPy's own numbers ----------------------------------
@pytest.mark.parametrize("name", CASES)
def test_composite_value_equals_numpys(name):
    f, x = CASES[name]
    np.testing.assert_allclose(traced_value(f, x), f(x), rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("axis", [None, 0, 2, -1, (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_quantiles_and_median_are_numpys_values_to_the_last_bit(axis, keepdims):
    # Same order statistics and NumPy's interpolation formula on each side of gamma = 1/2:
    # identical floating-point operations, so identical numbers; q's axes come first.
    functions = [lambda x, q=q: np.quantile(x, q, axis=axis, keepdims=keepdims)
                 for q in (0.5, 0.0, 1.0, 0.37, [0.1, 0.5, 0.99], [[0.25], [0.75]])]
    functions += [lambda x: np.percentile(x, [12.5, 60.0], axis=axis, keepdims=keepdims),
                  lambda x: np.median(x, axis=axis, keepdims=keepdims)]
    for f in functions:
        np.testing.assert_array_equal(traced_value(f, cube), f(cube))


def test_quantiles_of_slices_holding_nan_are_nan_as_in_numpy():
    x = cube.copy()
    x[0, 1, 2], x[1, 2, 0] = np.nan, np.inf
    for f in (lambda v: np.quantile(v, [0.2, 0.7], axis=2), lambda v: np.median(v, axis=1), np.median):
        expected = f(x)
        assert np.isnan(expected).any()
        np.testing.assert_array_equal(traced_value(f, x), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, f", [
    ("linspace", lambda v, dtype: np.linspace(v[0], v[1], 5, dtype=dtype)),
    ("linspace, retstep", lambda v, dtype: np.linspace(v[0], v[1], 4, endpoint=False, retstep=True, dtype=dtype)[0]),
    ("logspace", lambda v, dtype: np.logspace(v[0], v[1], 4, base=2.0, dtype=dtype)),
    ("geomspace", lambda v, dtype: np.geomspace(v[0] ** 2 + 1.0, v[1] ** 2 + 2.0, 4, dtype=dtype)),
])
def test_evenly_spaced_values_convert_to_the_float_dtype_asked_for(name, f, dtype):
    for x in (x3, x3.astype(np.float32)):  # computed in the endpoints' type, then converted, as NumPy does
        y, expected = traced_value(lambda v: f(v, dtype), x), f(x, dtype)
        assert y.dtype == expected.dtype == dtype
        np.testing.assert_array_equal(y, expected)
    # the conversion's derivative is the identity: float32 results carry float64's derivative, rounded
    J = jl.jacobian(lambda v: f(v, dtype), x3)
    np.testing.assert_allclose(J, jl.jacobian(lambda v: f(v, np.float64), x3), rtol=1e-6)
    assert_fd_close(jl.jacobian(lambda v: f(v, np.float64), x3), central_differences(lambda v: f(v, np.float64), x3),
                    name)


def test_float32_data_keeps_its_dtype():
    x = cube.astype(np.float32)
    for f in (lambda v: np.quantile(v, 0.3, axis=1), np.median, lambda v: np.nanmean(v, axis=0),
              np.nan_to_num):
        y, expected = traced_value(f, x), f(x)
        assert y.dtype == expected.dtype == np.float32
        np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["full", "same", "valid", 0, 1, 2])
def test_convolve_and_correlate_values_for_every_pair_of_lengths(mode):
    # Longer or shorter second operand (NumPy swaps them), traced or plain.
    def both_traced(fn, n):
        return lambda v: fn(v[:n], v[n:], mode)

    def one_traced(fn, n, plain):
        return lambda v: fn(plain, v[:n], mode)

    for n in range(1, 6):
        for m in range(1, 6):
            x = rng.normal(size=n + m)
            for fn in (np.convolve, np.correlate):
                for f in (both_traced(fn, n), one_traced(fn, n, x[n:].copy())):
                    np.testing.assert_allclose(traced_value(f, x), f(x), rtol=1e-12, atol=1e-12,
                                               err_msg=f"{fn.__name__} n={n} m={m}")


def test_polyval_nan_functions_and_cov_values():
    p = np.array([2.0, -1.0, 0.5, 3.0])
    np.testing.assert_array_equal(traced_value(lambda v: np.polyval(p, v), x34), np.polyval(p, x34))
    np.testing.assert_array_equal(traced_value(lambda v: np.polyval(v, 1.5), p), np.polyval(p, 1.5))
    for f in (np.nan_to_num, lambda v: np.nan_to_num(v, nan=-1.0, posinf=7.0, neginf=-7.0)):
        np.testing.assert_array_equal(traced_value(f, mixed), f(mixed))
    for f in (np.nansum, np.nanmean, lambda v: np.nansum(v, axis=1, keepdims=True),
              lambda v: np.nanmean(v, axis=(0, 1))):
        np.testing.assert_allclose(traced_value(f, x34_nan), f(x34_nan), rtol=1e-15)
    for f in (np.cov, np.corrcoef, lambda v: np.cov(v[0], v[1], bias=True), lambda v: np.corrcoef(v[0])):
        np.testing.assert_allclose(traced_value(f, x34), f(x34), rtol=1e-14, atol=1e-15)


# --- derivatives placed exactly -------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_quantile_differentiates_only_its_two_order_statistics(mode):
    x = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.0])  # sorted: 1 (1), 1.5 (3), 2 (5), 3 (0), 4 (2), 9 (4)
    # q = 0.25: virtual index 5 * 0.25 = 1.25 between sorted entries 1 and 2 (x[3], x[5]), weights 0.75, 0.25;
    # q = 0.9: 4.5, between x[2] and x[4], 0.5 each; the even median: sorted entries 2 and 3 (x[5], x[0])
    J = jl.jacobian(lambda v: np.concatenate([np.quantile(v, [0.25, 0.9]), np.median(v).reshape(1)]), x, mode=mode)
    expected = np.zeros((3, 6))
    expected[0, [3, 5]] = 0.75, 0.25
    expected[1, [2, 4]] = 0.5, 0.5
    expected[2, [5, 0]] = 0.5, 0.5
    np.testing.assert_array_equal(J, expected)
    # an odd length: the middle entry alone (x[:5] sorted: 1, 1.5, 3, 4, 9; 3 is x[0])
    np.testing.assert_array_equal(jl.jacobian(np.median, x[:5], mode=mode), [1, 0, 0, 0, 0])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_replaced_entries_get_derivative_zero(mode):
    finite = np.isfinite(mixed).astype(float)
    np.testing.assert_array_equal(jl.jacobian(np.nan_to_num, mixed, mode=mode), np.diag(finite))
    np.testing.assert_array_equal(jl.jacobian(np.nansum, mixed[:3], mode=mode), finite[:3])
    np.testing.assert_array_equal(jl.jacobian(np.nanmean, mixed[:3], mode=mode), finite[:3] / 2)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_sinc_at_zero_is_one_with_derivative_zero_and_no_warning(mode):
    x = np.array([0.0, 0.5, -1.25])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0, no inf - inf anywhere, in either pass
        J = jl.jacobian(np.sinc, x, mode=mode)
        assert traced_value(np.sinc, x)[0] == 1.0
    # NumPy's values to the last bit (the same operations away from 0), in float32 too
    for v in (np.array([0.0, 0.5, -1.25, 3.0, 1e-300]), np.array([0.0, 0.5, -1.25], np.float32)):
        y = traced_value(np.sinc, v)
        assert y.dtype == v.dtype
        np.testing.assert_array_equal(y, np.sinc(v))
    # d/dx sin(pi x) / (pi x) = (cos(pi x) - sinc(x)) / x away from 0, and 0 at 0 (an even function)
    expected = np.diag(np.r_[0.0, (np.cos(np.pi * x[1:]) - np.sinc(x[1:])) / x[1:]])
    assert J[0, 0] == 0.0 and not np.isnan(J).any()
    np.testing.assert_allclose(J, expected, rtol=1e-14, atol=1e-15)


def _sinc_second_derivative(x):
    """Closed form away from 0; near 0 the term-by-term second derivative of its series."""
    y = np.pi * x
    if abs(y) > 0.5:
        return ((2.0 - y ** 2) * np.sin(y) - 2.0 * y * np.cos(y)) * np.pi ** 2 / y ** 3
    return np.pi ** 2 * sum((-1) ** k * 2 * k * (2 * k - 1) * y ** (2 * k - 2) / math.factorial(2 * k + 1)
                            for k in range(1, 12))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_sinc_has_accurate_second_derivatives_near_zero(mode):
    # The quotient's own derivatives cancel near 0: 2e8 at x = 1e-12 for a true -pi**2 / 3
    x = np.array([0.0, 1e-12, -1e-8, 1e-5, 0.01, -0.03, 0.05, 0.2, 0.7])
    H = jl.hessian(lambda x: np.sum(np.sinc(x)), mode=mode)(x)
    np.testing.assert_allclose(np.diag(H), [_sinc_second_derivative(v) for v in x], rtol=1e-12)
    assert np.count_nonzero(H - np.diag(np.diag(H))) == 0
    y = traced_value(np.sinc, x)  # the series' value is NumPy's to an ulp
    np.testing.assert_array_max_ulp(y, np.sinc(x), maxulp=1)


def test_a_compiled_median_follows_the_order_of_each_input():
    # The program sorts at each x (argsort is recorded, as a comparison is), so one serves every order.
    f = lambda v: np.median(v) + np.quantile(v, 0.8)  # noqa: E731
    g = jl.jit(jl.grad(f))
    for x in (x6, x6[::-1].copy(), np.roll(x6, 2), x6):
        np.testing.assert_array_equal(g(x), jl.grad(f)(x))
    assert g.compiles == 1
    # A NaN sorted to where the largest value was keeps the order, but NumPy's answer becomes
    # NaN (no derivative): that is a decision on values too, so it is checked before replaying.
    h = jl.jit(jl.grad(np.median))
    np.testing.assert_array_equal(h(np.array([1.0, 2.0, 3.0])), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(h(np.array([1.0, 2.0, np.nan])), [0.0, 0.0, 0.0])


# --- FLOP counts, derived from the conventions (docs/architecture.md) ---------------------
def test_order_statistics_and_filters_count_their_arithmetic():
    # ptp of 5 values: max (5 - 1) + min (5 - 1) + one subtraction
    assert jl.count_flops(np.ptp, x5) == Cost(9, 0)
    # ptp along axis 1 of (3, 4): max 3 * 3, min 3 * 3, 3 subtractions
    assert jl.count_flops(lambda X: np.ptp(X, axis=1), x34) == Cost(21, 0)
    # median of 6 (even): the sort and the slice of the two middle entries are gathers (0 flops);
    # their mean, L = 2 elements into one output, costs L = 2
    assert jl.count_flops(np.median, x6) == Cost(2, 0)
    # along axis 1 of (3, 4): 3 means of 2 = 6; along axis 0 (odd length 3): a pick only
    assert jl.count_flops(lambda X: np.median(X, axis=1), x34) == Cost(6, 0)
    assert jl.count_flops(lambda X: np.median(X, axis=0), x34) == Cost(0, 0)
    # two quantile levels: gathers, then per level b - a, (b - a) * w, base + that: 3 * 2
    assert jl.count_flops(lambda x: np.quantile(x, [0.25, 0.5]), x6) == Cost(6, 0)
    # polyval with 4 coefficients at 5 points: Horner from y = 0 (as NumPy), 4 steps of
    # y * x (5 multiplications) + p[i] (5 additions) = 40
    assert jl.count_flops(lambda x: np.polyval([2.0, -1.0, 0.5, 3.0], x), x5) == Cost(40, 0)
    # convolve 5 values with 3: the shifted slices are views (0); "full" has 5 + 3 - 1 = 7 windows of 3:
    # 7 * 3 products + 7 * (3 - 1) sums = 35; "same" 5 windows: 15 + 10; "valid" 3 windows: 9 + 6
    v = [1.0, 2.0, 3.0]
    assert jl.count_flops(lambda x: np.convolve(x, v), x5) == Cost(35, 0)
    assert jl.count_flops(lambda x: np.convolve(x, v, "same"), x5) == Cost(25, 0)
    assert jl.count_flops(lambda x: np.convolve(x, v, "valid"), x5) == Cost(15, 0)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_a_long_kernel_gathers_its_windows_with_the_same_values_derivatives_and_count(mode):
    from jacobian_lab.numpy_polynomials import SHIFTED_UP_TO

    x, m = rng.normal(size=SHIFTED_UP_TO + 12), SHIFTED_UP_TO + 3  # the windows of x, m wide
    kernel = rng.normal(size=m)
    f = lambda v: np.convolve(v, kernel, mode) + np.correlate(v, v[:m], mode)  # noqa: E731
    np.testing.assert_allclose(traced_value(f, x), f(x), rtol=1e-12, atol=1e-12)
    assert_fd_close(jl.jacrev(f)(x), central_differences(f, x))
    assert_close(jl.jacfwd(f)(x), jl.jacrev(f)(x), 1e-13)
    windows = {"full": x.size + m - 1, "same": x.size, "valid": x.size - m + 1}[mode]
    assert jl.count_flops(lambda v: np.convolve(v, kernel, mode), x) == Cost(windows * (2 * m - 1), 0)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_interp_with_only_its_period_traced_names_the_form_that_works(mode):
    x, xp, fp = np.array([0.5, 4.2]), np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0])
    with pytest.raises(TypeError, match=re.escape("np.interp(x + 0.0 * period, xp, fp, period=period)")):
        jl.jacobian(lambda p: np.interp(x, xp, fp, period=p), np.array(3.0), mode=mode)  # NumPy's own interp ran
    g = lambda p: np.interp(x + 0.0 * p, xp, fp, period=p)  # noqa: E731
    assert_fd_close(jl.jacobian(g, np.array(3.0), mode=mode), central_differences(g, np.array(3.0)))


def test_products_integration_and_interpolation_count_their_arithmetic():
    W = np.arange(9.0).reshape(3, 3) / 10
    # kron of (2, 2) and (2, 3): one broadcast multiply writing 4 * 6 = 24 products
    assert jl.count_flops(lambda X: np.kron(X[:2, :2], X[:2, :3]), x34) == Cost(24, 0)
    # cross of two 3-vectors: 6 multiplications, 3 subtractions
    assert jl.count_flops(lambda x: np.cross(x[:3], x[3:]), x6) == Cost(9, 0)
    # W ** 5 by squarings: z = W; z = W W; z = z z; result = W z: 3 products of 2 * 3 * 3 * 3
    assert jl.count_flops(lambda X: np.linalg.matrix_power(X[:, :3] @ W, 5), x34) == Cost(54 + 3 * 54, 0)
    # multi_dot of (1, 3) (3, 3) (3, 2) (2, 1) left to right is 18 + 12 + 4 = 34, the cheapest order
    # (right to left: 12 + 36 + 6 = 54)
    assert jl.count_flops(lambda x: np.linalg.multi_dot([x[:3], W, x.reshape(3, 2), [1.0, 2.0]]), x6) == Cost(34, 0)
    # trapezoid of 5 values, spacing dx: y[1:] + y[:-1] (4), times dx (4), / 2 (4), sum of 4 (3)
    assert jl.count_flops(lambda x: np.trapezoid(x, dx=0.5), x5) == Cost(15, 0)
    # nanmax of 5: isnan (5), where (5), max of 5 (4)
    assert jl.count_flops(np.nanmax, x5) == Cost(14, 0)
    # interp at 6 points: per point fp[j+1] - fp[j], xp[j+1] - xp[j], their quotient, x - xp[j], times,
    # plus (6); x == xp[-1] and its where (2); x < xp[0], x > xp[-1] and their two wheres (4): 12 per point
    assert jl.count_flops(lambda x: np.interp(x, [-1.0, 0.0, 2.0], [1.0, 3.0, 2.0]), x6) == Cost(72, 0)
    # traced coordinates of 4 points (a cumsum, 3): their 3 differences, the weights of the 2 interior points (a:
    # a negation, a sum, a product and a quotient; b: a difference, a product and a quotient; c: a sum, a product
    # and a quotient: 10 per point), their weighted sums (5 each) and the edges' differences and quotients (4)
    assert jl.count_flops(lambda x: np.gradient(x[:4], np.cumsum(x[2:])), x6) == Cost(3 + 3 + 20 + 10 + 4, 0)
    # with a period: x % period (6) and xp % period (3), the ends a period away (2), then interp at 6 points
    assert jl.count_flops(lambda x: np.interp(x, [-1.0, 0.0, 2.0], [1.0, 3.0, 2.0], period=5.0), x6) == Cost(83, 0)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_interp_and_nanmax_place_their_derivatives(mode):
    x = np.array([-3.0, -0.5, 0.25, 1.0, 5.0])
    xp, fp = np.array([-1.0, 0.0, 1.0]), np.array([2.0, 4.0, 3.0])
    # slopes: 2 on [-1, 0), -1 on [0, 1]; outside the samples and at xp[-1] the value is constant
    np.testing.assert_array_equal(jl.jacobian(lambda v: np.interp(v, xp, fp), x, mode=mode),
                                  np.diag([0.0, 2.0, -1.0, 0.0, 0.0]))
    # in fp: the two weights of each point's segment
    J = jl.jacobian(lambda f: np.interp(x, xp, f), fp, mode=mode)
    np.testing.assert_allclose(J, [[1, 0, 0], [0.5, 0.5, 0], [0, 0.75, 0.25], [0, 0, 1], [0, 0, 1]], rtol=0, atol=1e-15)
    # nanmax: NaNs never win; an all-NaN slice is NaN, with NumPy's warning, and no derivative
    v = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):
        J = jl.jacobian(lambda a: np.nanmax(a, axis=1), v, mode=mode)
    np.testing.assert_array_equal(J, [[[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])


QUANTILE_METHODS = ["inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
                    "hazen", "weibull", "linear", "median_unbiased", "normal_unbiased", "lower", "higher",
                    "midpoint", "nearest"]
PICKING = {"inverted_cdf", "closest_observation", "lower", "higher", "nearest"}  # one order statistic each


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_every_quantile_method_gives_numpys_values_and_derivatives(method):
    """Each of NumPy's methods at every level of every small size: NumPy's values bit for bit, the
    same Jacobian in both modes, finite differences; positions before the first and past the last
    entry (the continuous methods' small and large levels) included."""
    levels = (0.0, 0.1, 0.25, 0.5, 0.73, 0.9, 1.0, [0.05, 0.5, 0.95])
    for n in range(1, 8):
        x = rng.permutation(np.arange(n, dtype=float)) * 0.37 + rng.normal(size=n) * 0.01
        for q in levels:
            for f in (lambda v: np.quantile(v, q, method=method),
                      lambda v: np.percentile(v, np.multiply(q, 100), method=method),
                      lambda v: np.nanquantile(np.where(v > 1.2, np.nan, v), q, method=method)):
                np.testing.assert_array_equal(traced_value(f, x), f(x))
                J = jl.jacrev(f)(x)
                np.testing.assert_array_equal(J, jl.jacfwd(f)(x))
                assert_fd_close(J, central_differences(f, x))
    X = rng.normal(size=(3, 7))
    for axis in (0, 1, None):
        f = lambda v: np.quantile(v, [0.2, 0.7], axis=axis, method=method, keepdims=True)  # noqa: E731
        np.testing.assert_array_equal(traced_value(f, X), f(X))
    # a gather for a method that picks one entry; else 3 flops per level (b - a, times the weight, plus)
    assert jl.count_flops(lambda v: np.quantile(v, [0.3, 0.6], method=method), x6) == Cost(
        0 if method in PICKING else 6, 0)


W35 = rng.uniform(0.1, 2.0, size=(3, 5))
with_nan = lambda X: np.where(X > 1.0, np.nan, X)  # noqa: E731
WEIGHTED_QUANTILES = {  # name: (f, what f computes before the quantile, whose work is all f counts besides it)
    "1-d": (lambda X: np.quantile(X[0], [0.1, 0.5, 0.9], weights=W35[0], method="inverted_cdf"), None),
    "along an axis": (lambda X: np.quantile(X, 0.3, axis=1, weights=W35, method="inverted_cdf"), None),
    "1-d weights along an axis, keepdims": (lambda X: np.percentile(
        X, [20, 70], axis=1, weights=W35[0], method="inverted_cdf", keepdims=True), None),
    "along axis 0": (lambda X: np.quantile(X, 0.5, axis=0, weights=W35, method="inverted_cdf"), None),
    "all axes, q of 2 dimensions": (lambda X: np.quantile(X, [[0.2], [0.8]], weights=W35, method="inverted_cdf"),
                                    None),
    "traced weights": (lambda X: np.quantile(X[0], 0.5, weights=np.exp(X[1]), method="inverted_cdf"),
                       lambda X: np.exp(X[1])),
    "nanquantile": (lambda X: np.nanquantile(with_nan(X), [0.4, 1.0], axis=1, weights=W35, method="inverted_cdf"),
                    with_nan),
    "a slice with a NaN": (lambda X: np.quantile(with_nan(X), 0.4, axis=1, weights=W35, method="inverted_cdf"),
                           with_nan),
}


@pytest.mark.parametrize("name", WEIGHTED_QUANTILES)
def test_weighted_quantiles_pick_numpys_element(name):
    """NumPy's weighted quantile (inverted_cdf) picks one element per level: its value bit for bit, a slope of
    1 there in both modes and compiled, none in the weights (the pick is constant between its jumps)."""
    (f, before), X = WEIGHTED_QUANTILES[name], rng.normal(size=(3, 5))
    np.testing.assert_array_equal(traced_value(f, X), f(X))
    J = jl.jacrev(f)(X)
    np.testing.assert_array_equal(J, jl.jacfwd(f)(X))
    np.testing.assert_array_equal(J, jl.jit(jl.jacobian(f))(X))
    assert set(np.unique(J)) <= {0.0, 1.0} and np.all(J.reshape(np.shape(f(X)) + (-1,)).sum(-1) <= 1)
    finite = np.isfinite(f(X))  # a NaN's differences are NaN, its derivative 0 (as any NaN result's)
    assert_fd_close(J[finite], central_differences(f, X)[finite])
    # a gather (0 flops), and a select of NaN where a slice holds one (1 per output)
    nan_select = Cost(np.size(f(X)), 0) if np.isnan(f(X)).any() else Cost(0, 0)
    assert jl.count_flops(f, X) == (before and jl.count_flops(before, X) or Cost(0, 0)) + nan_select


@pytest.mark.parametrize("f, message", [
    (lambda x: np.quantile(x, 0.5, weights=np.ones(6)), "Only method 'inverted_cdf' supports weights"),
    (lambda x: np.nanpercentile(x, 50, weights=-np.ones(6), method="inverted_cdf"), "must be non-negative"),
    (lambda x: np.quantile(x.reshape(2, 3), 0.5, axis=1, weights=np.ones(2), method="inverted_cdf"),
     "Shape of weights must be consistent"),
])
def test_weighted_quantiles_keep_numpys_checks(f, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        jl.jacrev(f)(x6)


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_float32_levels_pick_numpys_positions_and_dtype(method):
    """NumPy finds the positions in q's own type: n q is 18 exactly in float32 at q = 0.3, n = 60, and
    18.0000007 in float64, where a discrete method picks the next order statistic."""
    levels = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    for data in (np.float64, np.float32):
        for n in (7, 60, 61):
            x = rng.standard_normal(n).astype(data)
            for q in (np.float32(0.3), levels):
                f = lambda v: np.quantile(v, q, method=method)  # noqa: E731
                got, want = traced_value(f, x), f(x)
                np.testing.assert_array_equal(got, want)
                assert got.dtype == want.dtype


def test_an_unknown_quantile_method_is_numpys_value_error():
    with pytest.raises(ValueError, match=r"^'closest' is not a valid method\. Use one of: .*'nearest'"):
        jl.jacrev(lambda x: np.quantile(x, 0.5, method="closest"))(x6)


# --- arguments that are refused, by name ----------------------------------------------------
REFUSED = [
    ("out", lambda x: np.ptp(x, out=np.empty(()))),
    ("out", lambda x: np.quantile(x, 0.5, out=np.empty(()))),
    ("traced q", lambda x: np.quantile(x, x[0] * 0.0 + 0.5)),
    ("traced q", lambda x: np.percentile(x, x[0] * 0.0 + 50.0)),
    ("out", lambda x: np.median(x, out=np.empty(()))),
    ("dtype=int64", lambda x: np.nansum(x, dtype=np.int64)),
    ("out", lambda x: np.nansum(x, out=np.empty(()))),
    ("initial (other than a plain number)", lambda x: np.nansum(x, initial=x[0])),
    ("where (other than a plain mask)", lambda x: np.nansum(x, where=x)),
    ("dtype=float16", lambda x: np.nanmean(x, dtype=np.float16)),
    ("out", lambda x: np.nanmean(x, out=np.empty(()))),
    ("where (other than a plain mask)", lambda x: np.nanmean(x, where=x)),
    ("copy=False", lambda x: np.nan_to_num(x, copy=False)),
    ("dtype", lambda x: np.cov(x.reshape(2, 3), dtype=np.float64)),
    ("dtype", lambda x: np.corrcoef(x.reshape(2, 3), dtype=np.float64)),
    ("poly1d", lambda x: np.polyval(x, np.poly1d([1.0, 2.0]))),
    ("out", lambda x: np.nanmax(x, out=np.empty(()))),
    ("initial (other than a plain number)", lambda x: np.nanmin(x, initial=x[0])),
    ("out", lambda x: np.linalg.multi_dot([x[:3], np.eye(3), x[3:]], out=np.empty(()))),
    ("2 components", lambda x: np.cross(x[:2], x[2:4])),
    ("traced rcond", lambda x: np.polyfit(np.arange(6.0), x, 2, rcond=x[0] ** 2 * 1e-3)),
    ("traced bins", lambda x: np.histogram2d(x, x, bins=np.sort(x), weights=x)),
    ("traced range", lambda x: np.histogram2d(x, x, range=[(x.min(), 1.0), (0.0, 1.0)], weights=x)),
    ("traced bins", lambda x: np.histogramdd(x.reshape(3, 2), bins=[2, x[:3]])),
    ("traced range", lambda x: np.histogramdd((x, x), range=(x[:2], (0, 1)))),
    ("traced bins", lambda x: np.histogram(x, bins=np.sort(x), weights=x)),
    ("traced range", lambda x: np.histogram(x, range=(x.min(), 1.0))),
]
if hasattr(np, "vecdot"):
    REFUSED += [
        ("ord=1j", lambda x: np.linalg.vector_norm(x, ord=1j)),
        ("dtype=int64 (a non-float result has no derivative)", lambda x: np.linalg.trace(x.reshape(2, 3), dtype=np.int64)),
        ("axis", lambda x: np.vecdot(x, x, axis=0)),  # a gufunc keyword: numpy_api refuses them all by name
    ]


@pytest.mark.parametrize("argument, f", REFUSED, ids=[f"{i}-{a}" for i, (a, _) in enumerate(REFUSED)])
def test_refused_arguments_are_named(argument, f):
    error, message = refusal(argument)
    with pytest.raises(error, match=message):
        jl.jacrev(f)(x6)


def refusal(argument: str) -> tuple:
    """What refusing `argument` raises: out= a plain array (a traced result would lose its derivative
    there), a TypeError saying what to write instead (as for the ufuncs' out=); any other,
    NotImplementedError naming it."""
    if argument == "out":
        return TypeError, re.escape("(..., out=...) writes a traced result into a plain array") + ".*assign the result"
    return NotImplementedError, re.escape(argument)


@pytest.mark.skipif(not hasattr(np, "vecdot"), reason="NumPy 2 names")
def test_numpy2_names_follow_numpys_axes():
    # vector_norm over a tuple of axes is one vector norm, not a matrix norm (which ord=1 would give)
    def f(X):
        return np.linalg.vector_norm(X, axis=(1, 2), ord=1)

    np.testing.assert_allclose(traced_value(f, cube), f(cube), rtol=1e-15)
    assert not np.allclose(f(cube), np.linalg.norm(cube, ord=1, axis=(1, 2)))
    # linalg.trace and linalg.diagonal take the last two axes; np.trace the first two
    for f in (lambda X: np.linalg.trace(X, offset=-1), lambda X: np.linalg.diagonal(X, offset=2),
              lambda X: np.linalg.matrix_norm(X, ord=np.inf, keepdims=True), np.matrix_transpose,
              lambda X: np.vecdot(X, X[0]), lambda X: np.linalg.vecdot(X, X[:, :, :1], axis=1)):
        np.testing.assert_allclose(traced_value(f, cube), f(cube), rtol=1e-15, atol=1e-15)
    pieces = jl.jacobian(lambda X: np.unstack(X, axis=2)[1], cube, mode="reverse")
    np.testing.assert_array_equal(pieces, np.eye(24).reshape(24, 2, 3, 4)[1::4].reshape(2, 3, 2, 3, 4))
    with pytest.raises(ValueError, match="one-dimensional"):
        jl.jacrev(lambda X: np.linalg.outer(X, X))(x34)


# --- einsum -------------------------------------------------------------------------------
EINSUM_VALUES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (5, 3, 4)]), ("...ij,...jk->...ik", [(5, 1, 2, 3), (4, 3, 4)]),
    ("...ij,jk->...ik", [(2, 3), (3, 4)]), ("ij,ij->", [(2, 3), (2, 3)]), ("ij,ij->ij", [(2, 1), (1, 3)]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ii->", [(4, 4)]), ("iij->ij", [(3, 3, 2)]), ("ijji->", [(2, 3, 3, 2)]),
    ("i...i", [(2, 5, 2)]), ("ij->ji", [(2, 3)]), ("ij->ij", [(2, 3)]), ("ijk->kij", [(2, 3, 4)]), ("ijk->i", [(2, 3, 4)]),
    ("i,j->ij", [(2,), (3,)]), ("i,i", [(4,), (4,)]), ("i,i->i", [(4,), (4,)]), ("i,i,i->i", [(3,), (3,), (3,)]),
    ("ba,Ac", [(2, 3), (4, 5)]), (" i j , j k -> k i ", [(2, 3), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("ij,jk,kl,lm->mi", [(2, 3), (3, 4), (4, 2), (2, 3)]),
    ("abc,cd,bde->ae", [(2, 3, 4), (4, 5), (3, 5, 2)]), ("ij,k,jk->i", [(2, 3), (4,), (3, 4)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("...i,...i", [(2, 1, 3), (4, 3)]), ("...,...", [(), ()]),
    (",i->i", [(), (3,)]), ("", [()]), ("->", [()]), ("ij->j...", [(2, 3)]), ("...ij->j...", [(5, 2, 3)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]), ("ii,i->i", [(1, 1), (3,)]), ("i->", [(0,)]), ("ij,jk->ik", [(2, 0), (0, 3)]),
    ("bij,bjk,bkl->bil", [(2, 2, 3), (2, 3, 1), (2, 1, 4)]), ("ij,jk->", [(2, 3), (3, 4)]),
]


def _random_einsum(seed):
    """A random contraction: 1-3 operands of 1-3 labels from 'abcd' (repeats allowed), sizes 2-4,
    some axes of size 1 (broadcast), an explicit output of some of the labels in a random order."""
    r = np.random.default_rng(seed)
    size = dict(zip("abcd", r.integers(2, 5, size=4)))
    terms = ["".join(r.choice(list("abcd"), size=r.integers(1, 4))) for _ in range(r.integers(1, 4))]
    # one size per label and operand: a repeated label (a diagonal) must not broadcast
    own = [{c: int(size[c]) if r.random() > 0.15 else 1 for c in t} for t in terms]
    shapes = [tuple(o[c] for c in t) for t, o in zip(terms, own)]
    used = sorted(set("".join(terms)))
    output = "".join(r.permutation(used)[:r.integers(0, len(used) + 1)])
    return ",".join(terms) + "->" + output, shapes


EINSUM_VALUES += [_random_einsum(seed) for seed in range(16)]


@pytest.mark.parametrize("subscripts, shapes", EINSUM_VALUES, ids=[f"{s}:{sh}" for s, sh in EINSUM_VALUES])
def test_einsum_values_equal_numpys(subscripts, shapes):
    operands = [rng.normal(size=s) for s in shapes]
    expected = np.einsum(subscripts, *operands)
    sizes = np.cumsum([0] + [int(np.prod(s)) for s in shapes])

    def all_traced(x):
        return np.einsum(subscripts, *(x[lo:hi].reshape(s) for lo, hi, s in zip(sizes[:-1], sizes[1:], shapes)))

    def only_traced(k):
        return lambda x: np.einsum(subscripts, *(x if i == k else v for i, v in enumerate(operands)))

    results = [traced_value(all_traced, np.concatenate([np.ravel(v) for v in operands]))]
    results += [traced_value(only_traced(k), operands[k]) for k in range(len(operands))]
    for y in results:
        assert np.shape(y) == np.shape(expected)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


def test_einsum_interleaved_form_and_optimize_give_numpys_values():
    X, B = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    for f in (lambda v: np.einsum(v, [0, 1], B, [1, 2], [0, 2]), lambda v: np.einsum(v, [0, 1], B, [1, 2]),
              lambda v: np.einsum(v, [Ellipsis, 1], B, [1, 2], [Ellipsis, 2]), lambda v: np.einsum(v, [30, 0]),
              lambda v: np.einsum("ij,jk->ik", v, B, optimize=True),
              lambda v: np.einsum("ij,jk->ik", v, B, optimize="greedy", dtype=None, order="K", casting="safe")):
        np.testing.assert_allclose(traced_value(f, X), f(X), rtol=1e-13)


def test_einsum_computes_in_the_operands_common_type():
    x, mask = np.ones(3, np.float32), np.array([[True, False], [True, True]])
    # the boolean mask summed over i, j on its own would count in int64, and int64 * float32 is float64
    for f in (lambda v: np.einsum("ij,k->k", mask, v), lambda v: np.einsum("i,i->i", v, np.ones(3, bool)),
              lambda v: np.einsum("ii->i", np.outer(v, v))):
        y = traced_value(f, x)
        assert y.dtype == f(x).dtype == np.float32
        np.testing.assert_array_equal(y, f(x))
    assert traced_value(lambda v: np.einsum(",i->i", 2.0, v), x).dtype == np.float64  # as NumPy: 2.0 is float64


def test_einsum_counts_follow_the_conventions():
    # (3, 4) @ (4, 5) as one matmul, m = 3, k = 4, n = 5: 2·3·4·5 = 120
    B45 = rng.normal(size=(4, 5))
    assert jl.count_flops(lambda X: np.einsum("ij,jk->ik", X, B45), x34) == Cost(120, 0)
    # "ij,ij->" on (3, 4): both labels shared and summed, so m = n = 1, k = 12: 2·12 = 24
    assert jl.count_flops(lambda X: np.einsum("ij,ij->", X, X), x34) == Cost(24, 0)
    # "ii->" on (4, 4): the diagonal is a gather (0), its sum of L = 4 costs L - 1 = 3
    assert jl.count_flops(lambda X: np.einsum("ii->", X), np.eye(4)) == Cost(3, 0)
    # "ij,jk,kl->il" on (2, 3), (3, 4), (4, 5), left to right: (2,3)@(3,4) = 2·2·3·4 = 48, then
    # (2,4)@(4,5) = 2·2·4·5 = 80: 128 (right to left would be 2·3·4·5 + 2·2·3·5 = 180)
    B23, B34 = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    assert jl.count_flops(lambda X: np.einsum("ij,jk,kl->il", B23, B34, X), B45) == Cost(128, 0)
    # an outer product "i,j->ij" of 3 and 4 values is a broadcast multiply: 1 flop per output = 12
    assert jl.count_flops(lambda x: np.einsum("i,j->ij", x, x6[:4]), x3) == Cost(12, 0)
    # a label in one operand only is summed first: "ijk->i" on (2, 3, 4): 2 outputs of L = 12: 2·11 = 22
    assert jl.count_flops(lambda C: np.einsum("ijk->i", C), cube) == Cost(22, 0)
    # "...ij,...jk->...ik" on (2, 3, 4) and (2, 4, 3): 2 batch entries of 2·3·4·3 = 72: 144
    assert jl.count_flops(lambda C: np.einsum("...ij,...jk->...ik", C, C.transpose(0, 2, 1)), cube) == Cost(144, 0)
    # "ij,jk->ik" with a (3, 1) left operand: its j axis broadcasts, so the right operand (3, 4)
    # is summed over j first (4 outputs of L = 3: 8), then a (3) by (4) outer product (12): 20
    assert jl.count_flops(lambda X: np.einsum("ij,jk->ik", X[:, :1], X[:, :4]), x34) == Cost(20, 0)
    # transposes, diagonals and broadcasts alone move data for free
    assert jl.count_flops(lambda X: np.einsum("ij->ji", X) + np.einsum("ii->i", X[:, :3]).sum(), x34) == Cost(14, 0)


EINSUM_ERRORS = [
    ("ij,jk->ik", [(2, 3)], "names 2 operand"),
    ("ij->ij", [(2, 3), (2, 3)], "names 1 operand"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "subscript 'j' has size 3 in operand 0 and 4 in operand 1"),
    ("ij,jk", [(2, 3), (4, 5)], "subscript 'j'"),
    ("...i,...i", [(2, 1, 3), (5, 4, 3)], "subscript '...' has size 2 in operand 0 and 5"),
    ("ii", [(2, 3)], r"collapsing index 'i' don't match \(2 != 3\)"),
    ("ii", [(1, 3)], "collapsing index 'i'"),
    ("ij->ix", [(2, 3)], "output subscript 'x' which never appeared"),
    ("ij->ii", [(2, 3)], "output subscript 'i' multiple times"),
    ("ij", [(2, 3, 4)], "no '...' ellipsis"),
    ("ijk", [(2, 3)], "too many subscripts for operand 0"),
    ("...ij", [(2,)], "too many subscripts for operand 0"),
    ("...i->i", [(2, 3)], "no '...' ellipsis"),
    ("i.j", [(2, 3)], "not part of an ellipsis"),
    ("...i...", [(2, 3)], "not part of an ellipsis"),
    ("ij->i->j", [(2, 3)], "invalid subscript '-'"),
    ("i1", [(2, 3)], "invalid subscript '1'"),
    ("ij-", [(2, 3)], "proper '->'"),
]


@pytest.mark.parametrize("subscripts, shapes, message", EINSUM_ERRORS, ids=[e[0] for e in EINSUM_ERRORS])
def test_malformed_einsum_subscripts_are_value_errors(subscripts, shapes, message):
    operands = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError):
        np.einsum(subscripts, *operands)  # NumPy refuses them too
    with pytest.raises(ValueError, match=message):
        jl.jacrev(lambda x: np.einsum(subscripts, x, *operands[1:]))(operands[0])


def test_einsum_refuses_what_it_cannot_honour_by_name():
    X = np.ones((2, 2))
    with pytest.raises(TypeError, match=re.escape("numpy.einsum(..., out=...) writes a traced result into a plain")):
        jl.jacrev(lambda x: np.einsum("ij->i", x, out=np.empty(2)))(X)
    for name, f in [("dtype=int64 (a non-float", lambda x: np.einsum("ij->i", x, dtype=np.int64, casting="unsafe")),
                    ("order='C'", lambda x: np.einsum("ij->i", x, order="C"))]:
        with pytest.raises(NotImplementedError, match=re.escape(name)):
            jl.jacrev(f)(X)
    with pytest.raises(ValueError, match=re.escape("[0, 52)")):
        jl.jacrev(lambda x: np.einsum(x, [0, 52]))(X)
    with pytest.raises(TypeError, match="integer or an ellipsis"):
        jl.jacrev(lambda x: np.einsum(x, ["i", "j"]))(X)


def test_jitted_einsum_jacobian_matches_the_eager_one():
    def f(X):
        return np.tanh(np.einsum("ij,jk,k->i", X, A, np.einsum("ii->i", X[:, :3])))

    jac = jl.jit(jl.jacobian(f))
    for X in (x34, np.cos(x34) * 2.0):
        np.testing.assert_allclose(jac(X), jl.jacobian(f, X), rtol=1e-13, atol=1e-15)


# --- value queries: NumPy's answers, read from the primal values, never traced --------------
VALUE_QUERIES = {
    "argpartition": lambda v: np.argpartition(v, 2),
    "digitize": lambda v: np.digitize(v, [-1.0, 0.0, 1.0], right=True),
    "isin": lambda v: np.isin(v, [2.0, 0.75, -np.inf], invert=True),
    "isneginf": np.isneginf,
    "isposinf": np.isposinf,
    "iscomplex": np.iscomplex,
    "isreal": np.isreal,
    "array_equiv": lambda v: (np.array_equiv(v[:1], [[0.75], [0.75]]), np.array_equiv(v[2:], v[2:] + 1.0)),
    "nanargmax": np.nanargmax,
    "nanargmin": lambda v: np.nanargmin(v.reshape(2, 3), axis=1),
    "lexsort": lambda v: np.lexsort((v, np.isnan(v))),
    "lexsort of the rows": lambda v: np.lexsort(v.reshape(2, 3)),
    "diag_indices_from": lambda v: np.diag_indices_from(v[:4].reshape(2, 2)),
    "tril_indices_from": lambda v: np.tril_indices_from(v.reshape(2, 3), k=1),
    "triu_indices_from": lambda v: np.triu_indices_from(v.reshape(3, 2)),
    "can_cast": lambda v: (np.can_cast(v, np.float32), np.can_cast(v, np.float64)),
    "common_type": lambda v: np.common_type(v, v[:2]),
    "min_scalar_type": lambda v: np.min_scalar_type(v[0]),
    "may_share_memory": lambda v: np.may_share_memory(v, np.ones(3)),
    "shares_memory": lambda v: np.shares_memory(v, v),
    "matrix_rank": lambda v: np.linalg.matrix_rank(np.nan_to_num(v).reshape(2, 3)),
}


def _plain(value):
    if isinstance(value, tuple):
        return all(map(_plain, value))
    return not hasattr(value, "_trace") and isinstance(value, (np.ndarray, np.generic, bool, type, np.dtype))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_value_queries_give_numpys_plain_answers_on_traced_arrays(mode):
    answers = {}

    def f(v):
        answers.update({name: query(v) for name, query in VALUE_QUERIES.items()})
        return v * 2.0

    jl.jacobian(f, mixed, mode=mode)  # NaN, +-inf and numbers: every query has something to find
    assert answers.keys() == VALUE_QUERIES.keys()
    for name, query in VALUE_QUERIES.items():
        assert _plain(answers[name]), name
        np.testing.assert_equal(answers[name], query(mixed), err_msg=name)


# --- more index maps and counts ---------------------------------------------------------------
@pytest.mark.parametrize("f", [
    lambda x: np.diagflat(x), lambda x: np.dsplit(x.reshape(1, 1, 5), [2])[1],
    lambda x: np.rollaxis(x.reshape(1, 5), 1),
    lambda x: np.broadcast_arrays(x, x[:1])[1], lambda x: np.choose([0, 1, 0, 1, 1], [x, x[::-1]]),
    lambda x: np.compress([1, 0, 1, 1, 0], x), lambda x: np.extract([1, 0, 1, 1, 0], x), lambda x: np.partition(x, 2),
    lambda x: np.trim_zeros(np.pad(x, 1)), lambda x: np.insert(x, [1, 3], x[:2]), lambda x: np.block([[x], [x]]),
])
def test_more_index_maps_move_data_for_free(f):
    assert jl.count_flops(f, x5) == Cost(0, 0)


def test_more_composites_count_their_arithmetic():
    # gradient of 5 values, unit spacing, edge_order 1: inside, (f[2:] - f[:-2]) / (2 dx) at 3 points
    # (3 + 3); at each edge (f[1] - f[0]) / dx (1 + 1: NumPy divides by dx = 1.0 too): 6 + 4 = 10
    assert jl.count_flops(np.gradient, x5) == Cost(10, 0)
    # linspace from x[0] to x[1], 5 points: delta = stop - start (1), step = delta / 4 (1),
    # arange(5) * step (5), + start (5); the last point set to stop is a slice and a concatenation (0)
    assert jl.count_flops(lambda x: np.linspace(x[0], x[1], 5), x5) == Cost(12, 0)
    # nanvar of L = 5 values: isnan (5), NaNs to 0 by a where (5), the count of numbers as a where (5)
    # and a sum (4); their sum (4) divided by the count (1); the deviations (5), 0 again at NaNs
    # (where, 5), squared (5), summed (4), divided by the count (1; ddof = 0 is not subtracted): 9 L - 1
    assert jl.count_flops(np.nanvar, x5) == Cost(44, 0)
    # along axis 1 of (3, 4), ddof=1: 6 elementwise steps on 12 entries (72), 3 sums of L = 4 into
    # 3 outputs (3 * 3 * 3 = 27), per output the mean's division, count - ddof and the last division
    # (3 * 3 = 9): 108. The NaNs change no count: the same operations run on every entry.
    assert jl.count_flops(lambda X: np.nanvar(X, axis=1, ddof=1), x34_nan) == Cost(108, 0)
    # vander of 5 values, N = 5: the columns x, x^2, x^3, x^4 as a running product along each row,
    # a cumprod over L = 4 (L - 1 = 3 per row, 15); the column of ones, concatenation and flip: 0
    assert jl.count_flops(np.vander, x5) == Cost(15, 0)
    # polyder of 5 coefficients: p[:-1] * (4, 3, 2, 1), 4 products; the second derivative 4 + 3
    assert jl.count_flops(np.polyder, x5) == Cost(4, 0)
    assert jl.count_flops(lambda p: np.polyder(p, 2), x5) == Cost(7, 0)
    if hasattr(np, "matvec"):
        # matvec (3, 4) by (4,): the matmul (3, 4) @ (4, 1), 2 * 3 * 4 * 1 = 24
        assert jl.count_flops(lambda X: np.matvec(X, X[0]), x34) == Cost(24, 0)


# --- derivatives and values at the special places ----------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_partition_with_nans_is_numpys_and_moves_each_value(mode):
    x = np.array([3.0, np.nan, 1.0, 4.0, np.nan, 1.5, 9.0, 2.0, 0.5, 7.0])
    for kth in (2, -1, (0, 4)):
        def f(v, kth=kth):
            return np.partition(v, kth)

        expected = f(x)
        np.testing.assert_array_equal(traced_value(f, x), expected)
        J = jl.jacobian(f, x, mode=mode)
        source = J.argmax(axis=1)
        # one entry moved per output (a permutation), the one holding the value NumPy put there
        np.testing.assert_array_equal(np.sort(J, axis=1)[:, -1], 1.0)
        np.testing.assert_array_equal(J.sum(axis=1), 1.0)
        np.testing.assert_array_equal(np.sort(source), np.arange(10))
        np.testing.assert_array_equal(x[source], expected)
    # for kth = 2 NumPy's partition and argpartition order the entries off kth differently
    assert not np.array_equal(x[np.argpartition(x, 2)], np.partition(x, 2), equal_nan=True)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_partition_gives_a_tied_kth_value_the_derivative_sort_gives_it(mode):
    """argpartition puts any one of tied values at kth, where the sort's order statistic (and the README) take
    the one a stable sort puts there: np.partition(x, k)[k] and np.sort(x)[k] had different derivatives."""
    rng = np.random.default_rng(7)
    for x, kth, axis in [(np.array([2.0, 2.0, 1.0, 0.0, 2.0, 1.0, 2.0, 1.0]), 2, -1),
                         (rng.integers(0, 3, (4, 9)).astype(float), (1, 4), 1),
                         (rng.integers(0, 3, (9, 3)).astype(float), -2, 0),
                         (np.array([2.0, np.nan, np.nan, np.nan, 1.0]), [1, 3], 0)]:  # NaNs tie too
        def f(v, kth=kth, axis=axis):
            return np.take(np.partition(v, kth, axis=axis), kth, axis=axis)

        def by_sort(v, kth=kth, axis=axis):
            return np.take(np.sort(v, axis=axis, kind="stable"), kth, axis=axis)

        np.testing.assert_array_equal(traced_value(f, x), by_sort(x))
        jacobian = jl.jit(jl.jacobian(f, mode="auto")) if mode == "jit" else jl.jacobian(f, mode=mode)
        for _ in range(2 if mode == "jit" else 1):  # and a replay
            np.testing.assert_array_equal(jacobian(x), jl.jacobian(by_sort, x, mode="reverse"))


@pytest.mark.parametrize("axis", [None, 0, 2, -1, (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_nan_quantiles_and_nanmedian_are_numpys_values_to_the_last_bit(axis, keepdims):
    # Each slice's numbers (a different count per slice), NumPy's virtual index and lerp for that count.
    x = cube.copy()
    x[0, 1, 2] = x[1, 0, 0] = x[1, 2, 3] = x[1, 2, 1] = np.nan
    functions = [lambda v, q=q: np.nanquantile(v, q, axis=axis, keepdims=keepdims)
                 for q in (0.5, 0.0, 1.0, 0.37, [0.1, 0.5, 0.99])]
    functions += [lambda v: np.nanpercentile(v, [12.5, 60.0], axis=axis, keepdims=keepdims),
                  lambda v: np.nanmedian(v, axis=axis, keepdims=keepdims)]
    for f in functions:
        expected = f(x)
        assert not np.isnan(expected).any()
        np.testing.assert_array_equal(traced_value(f, x), expected)
    y = traced_value(lambda v: np.nanquantile(v, 0.3, axis=axis), x.astype(np.float32))
    assert y.dtype == np.float32  # a Python q keeps float32 data float32, as in NumPy
    np.testing.assert_array_equal(y, np.nanquantile(x.astype(np.float32), 0.3, axis=axis))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_an_empty_slice_is_nan_with_numpys_warning_and_no_derivative(mode):
    v = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan] * 4])
    # row 0 holds 1, 3, 2: the median is 2 (v[0, 3]); the 0.25 quantile has virtual index 0.5,
    # halfway between 1 (v[0, 0]) and 2 (v[0, 3])
    for f, row in ((lambda a: np.nanmedian(a, axis=1), [0.0, 0.0, 0.0, 1.0]),
                   (lambda a: np.nanquantile(a, 0.25, axis=1), [0.5, 0.0, 0.0, 0.5]),
                   (lambda a: np.nanpercentile(a, [25.0], axis=1)[0], [0.5, 0.0, 0.0, 0.5])):
        with pytest.warns(RuntimeWarning, match="All-NaN slice"):
            expected = f(v)
        with pytest.warns(RuntimeWarning, match="All-NaN slice"):
            y = traced_value(f, v)
        with pytest.warns(RuntimeWarning, match="All-NaN slice"):
            J = jl.jacobian(f, v, mode=mode)
        np.testing.assert_array_equal(y, expected)
        assert np.isnan(y[1])
        np.testing.assert_array_equal(J, [[row, [0.0] * 4], [[0.0] * 4, [0.0] * 4]])
    # nanvar with no degree of freedom left: NaN, NumPy's warning, no derivative
    with pytest.warns(RuntimeWarning, match="Degrees of freedom"):
        J = jl.jacobian(lambda a: np.nanvar(a, axis=1, ddof=3), v, mode=mode)
    np.testing.assert_array_equal(J, 0.0)
    with pytest.warns(RuntimeWarning, match="Degrees of freedom"):
        y = traced_value(lambda a: np.nanvar(a, axis=1, ddof=3), v)
    assert np.isnan(y).all()


def _jacobian_in(mode):
    if mode == "jit":
        return lambda f, x: jl.jit(jl.jacobian(f, mode="reverse"))(x)
    return lambda f, x: jl.jacobian(f, x, mode=mode)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_moments_at_their_edges(mode):
    jacobian = _jacobian_in(mode)
    # std of constant data or of one sample: slope 0, as a norm's at 0 (not 0 · ∞ = NaN)
    np.testing.assert_array_equal(jacobian(np.std, np.ones(3)), np.zeros(3))
    np.testing.assert_array_equal(jacobian(np.nanstd, np.array([2.0, np.nan])), np.zeros(2))
    # a mean over an empty slice is NaN (NumPy's warning) with no derivative; the others keep theirs
    groups = lambda v: np.stack([np.nan_to_num(np.mean(g)) for g in (v[:2], v[2:], v[3:])])  # noqa: E731
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"), np.errstate(invalid="ignore"):  # 0 / 0
        J = jacobian(groups, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(J, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    # weights as a list, as NumPy takes them; weights summing to 0 are NumPy's error
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(jacobian(lambda v: np.average(v, weights=[1.0, 2.0, 3.0]), x), [1 / 6, 1 / 3, 1 / 2])
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        jacobian(lambda v: np.average(v, weights=[1.0, -1.0, 0.0]), x)
    # NumPy's ∞-norm of an empty vector is 0 (its initial=0), and so is the 2-norm of an empty matrix
    assert jacobian(lambda v: np.linalg.norm(v.reshape(2, 0), np.inf, axis=1), np.zeros(0)).shape == (2, 0)
    for empty in (lambda v: np.linalg.norm(v.reshape(0, 0), 2),
                  lambda v: np.linalg.norm(v.reshape(2, 0, 0), 2, (1, 2))):
        np.testing.assert_array_equal(traced_value(empty, np.zeros(0)), empty(np.zeros(0)))
        assert jacobian(empty, np.zeros(0)).shape == np.shape(empty(np.zeros(0))) + (0,)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_corrcoef_keeps_the_ratios_slope_where_numpy_clips_it(mode):
    """At r = ±1 exactly, and where rounding puts the ratio past 1, the Hessian is the ratio's
    (NumPy's clip is for rounding; its slope would be ½ at ±1 and 0 past it). Reference: the
    ratio written out, whose Hessian has no clip in it."""
    hessian = (lambda f: jl.jit(jl.hessian(f))) if mode == "jit" else lambda f: jl.hessian(f, mode=mode)

    def ratio(v, n):
        a, b = v[:n] - np.mean(v[:n]), v[n:] - np.mean(v[n:])
        return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))

    exact = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 9.0])  # b = 2a + 1: NumPy gives r = 1.0
    past = np.array([-0.713, 0.553, -0.063, -0.589, -1.439, 2.359, 0.511, -1.067])  # b = 3a + 0.7
    assert np.corrcoef(exact[:3], exact[3:])[0, 1] == 1.0
    c = np.cov(past[:4], past[4:])
    assert np.corrcoef(past[:4], past[4:])[0, 1] == 1.0 and c[0, 1] / np.sqrt(c[0, 0]) / np.sqrt(c[1, 1]) > 1.0
    for x, n in ((exact, 3), (past, 4), (exact * [1, 1, 1, -1, -1, -1], 3)):
        H = hessian(lambda v: np.corrcoef(v[:n], v[n:])[0, 1])(x)
        np.testing.assert_allclose(H, jl.hessian(lambda v: ratio(v, n))(x), rtol=1e-9, atol=1e-12)
        assert np.abs(H).max() > 0.01


def test_compiled_zero_norm_and_float_masks_replay():
    g = jl.jit(jl.jacrev(lambda v: np.sum(v * (v > 1).astype(float)) + np.linalg.norm(v, 0)))
    for x in (np.array([1.0, 2.0, 3.0]), np.array([3.0, 0.0, 2.0])):
        np.testing.assert_array_equal(g(x), (x > 1).astype(float))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_unwrap_and_modf_pass_the_derivative_through_unchanged(mode):
    p = np.array([0.1, 2.0, 5.5, -1.0, 3.0, 9.0, 2.5])
    y = traced_value(np.unwrap, p)
    np.testing.assert_array_equal(y, np.unwrap(p))
    assert not np.allclose(y, p)  # jumps were corrected
    # the corrections are piecewise constant: the Jacobian is exactly the identity
    np.testing.assert_array_equal(jl.jacobian(np.unwrap, p, mode=mode), np.eye(7))
    np.testing.assert_array_equal(jl.jacobian(lambda v: np.modf(v)[0], p, mode=mode), np.eye(7))
    # the integer part and fix carry no derivative
    np.testing.assert_array_equal(jl.jacobian(lambda v: v + np.modf(v)[1] + np.fix(v), p, mode=mode), np.eye(7))
    for f in (lambda v: np.modf(v)[0], lambda v: np.modf(v)[1], np.fix):  # 0 at +-inf, NaN at NaN, as NumPy
        np.testing.assert_array_equal(traced_value(f, mixed), f(mixed))


REFUSED_MORE = [
    ("traced bin indices", lambda x: np.bincount(x * 0.0, weights=x)),
    ("out", lambda x: np.choose([0, 1], [x[:2], x[2:4]], out=np.empty(2))),
    ("traced a", lambda x: np.choose(x * 0.0, [x, x])),
    ("traced condition", lambda x: np.compress(x, x)),
    ("out", lambda x: np.compress([1, 0], x[:2], out=np.empty(1))),
    ("traced condition", lambda x: np.extract(x, x)),
    ("order", lambda x: np.partition(x, 1, order="a")),
    ("traced obj", lambda x: np.insert(x, x[0], 1.0)),
    ("device", lambda x: np.linspace(x[0], x[1], 3, device="gpu")),
    ("dtype=int64", lambda x: np.logspace(x[0], 1.0, 3, dtype=np.int64)),
    ("dtype=int32", lambda x: np.linspace(x[0], x[1], 3, dtype=np.int32)),
    ("dtype=int64", lambda x: np.nancumsum(x, dtype=np.int64)),
    ("out", lambda x: np.nancumprod(x, out=np.empty(6))),
    ("initial (other than a plain number)", lambda x: np.nanprod(x, initial=np.ones(2))),
    ("where (other than a plain mask)", lambda x: np.nanprod(x, where=x)),
    ("dtype=int64", lambda x: np.nanvar(x, dtype=np.int64)),
    ("where (other than a plain mask)", lambda x: np.nanstd(x, where=x)),
    ("out", lambda x: np.nanmedian(x, out=np.empty(()))),
    ("traced q", lambda x: np.nanquantile(x, x[0] * 0.0 + 0.5)),
    ("a q of 2 dimensions", lambda x: np.nanquantile(x.reshape(1, 2, 3), [[0.5]], axis=(1, 2))),
    ("poly1d", lambda x: np.polyadd(x, np.poly1d([1.0, 2.0]))),
    ("poly1d", lambda x: np.polymul(np.poly1d([1.0, 2.0]), x)),
]
if hasattr(np, "matvec"):
    REFUSED_MORE.append(("axes", lambda x: np.matvec(x.reshape(2, 3), x[:3], axes=[(0, 1), 0, 0])))


@pytest.mark.parametrize("argument, f", REFUSED_MORE, ids=[f"{i}-{a}" for i, (a, _) in enumerate(REFUSED_MORE)])
def test_more_refused_arguments_are_named(argument, f):
    error, message = refusal(argument)
    with pytest.raises(error, match=message):
        jl.jacrev(f)(x6)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_piecewise_and_histograms_place_their_derivatives(mode):
    x = np.array([-1.0, -0.2, 0.3, 2.0])
    # pieces: x^2 below -0.5, 3x above 0.5, 0 elsewhere (no "otherwise" function)
    J = jl.jacobian(lambda v: np.piecewise(v, [v < -0.5, v > 0.5], [np.square, lambda t: 3 * t]), x, mode=mode)
    np.testing.assert_array_equal(J, np.diag([-2.0, 0.0, 0.0, 3.0]))
    # a weighted histogram is linear in the weights: each weight counts once, in its own bin
    a = np.array([0.1, 0.9, 0.4, 0.6])
    J = jl.jacobian(lambda w: np.histogram(a, bins=2, range=(0.0, 1.0), weights=w)[0], x, mode=mode)
    np.testing.assert_array_equal(J, [[1, 0, 1, 0], [0, 1, 0, 1]])
    # the edges of a traced sample's bins move with its min (x[0]) and max (x[3]); its densities with them
    J = jl.jacobian(lambda v: np.histogram(v, bins=2)[1], x, mode=mode)
    np.testing.assert_array_equal(J, [[1, 0, 0, 0], [0.5, 0, 0, 0.5], [0, 0, 0, 1]])
    J = jl.jacobian(lambda v: np.histogram(v, bins=2, density=True)[0], x, mode=mode)  # 2 counts / (n (max − min))
    np.testing.assert_allclose(J, np.outer([3, 1], [1, 0, 0, -1]) * 2 / (4 * 3.0 ** 2), rtol=1e-15)
    # counts of traced values are piecewise constant: plain NumPy counts, no derivative
    counts = []
    jl.jacobian(lambda v: (counts.append(np.histogram(v, bins=2)[0]), v)[1], x, mode=mode)
    assert not hasattr(counts[0], "_trace")
    np.testing.assert_array_equal(counts[0], np.histogram(x, bins=2)[0])


def test_weighted_counts_add_where_weights_share_a_bin():
    # bincount of 5 weights into 7 bins: bins 2 and 2 share one addition; a scatter-add costs
    # 1 flop per weight landing on an already-filled position
    assert jl.count_flops(lambda w: np.bincount([0, 2, 2, 5, 1], weights=w), x5) == Cost(1, 0)


def test_edge_inputs_follow_numpy():
    # an empty median is NaN with NumPy's warning, not an IndexError
    with pytest.warns(RuntimeWarning):
        y = traced_value(np.median, np.zeros(0))
    assert np.isnan(y) and np.shape(y) == ()
    # histogram weights keep their float32, and must have a's shape
    w = np.array([0.5, -1.5, 2.0], np.float32)
    f = lambda v: np.histogram(np.arange(3.0), bins=2, weights=v)[0]  # noqa: E731
    y = traced_value(f, w)
    assert y.dtype == f(w).dtype == np.float32
    np.testing.assert_allclose(y, f(w), rtol=1e-7)
    with pytest.raises(ValueError, match="same shape"):
        jl.jacobian(lambda v: np.histogram(np.arange(2.0), bins=2, weights=v)[0], w)


# --- unique: NumPy's answer on values, each unique value gathered from its first occurrence ---------
# 0.0 and -0.0 three times each, two NaNs, 1 to 8 twice: long enough for NumPy's sorts to move
# the zeros around, so that its unique zero is not always the sign met first
def _signed(seed):
    return np.random.default_rng(seed).permutation(np.r_[[0.0] * 3, [-0.0] * 3, [np.nan] * 2, np.arange(1.0, 9.0),
                                                         np.arange(1.0, 9.0)])


def _zero_not_first(v):
    return np.signbit(np.unique(v)[0]) != np.signbit(v[np.flatnonzero(v == 0)[0]])


# An order in which NumPy's unique zero has the sign of a later occurrence: which orders do depends
# on NumPy's sort (its version, and the SIMD it finds), so it is looked for
SIGNED = next((v for v in map(_signed, range(50)) if _zero_not_first(v)), _signed(0))
UNIQUE_CALLS = [
    lambda v: np.unique(v),
    lambda v: np.unique(v, return_index=True),
    lambda v: np.unique(v, return_inverse=True, return_counts=True),
    lambda v: np.unique(v, True, True, True, equal_nan=False),
    lambda v: np.unique(v.reshape(2, 12)),
    lambda v: np.unique(v.reshape(12, 2), axis=0, return_inverse=True),
    lambda v: np.unique(v.reshape(4, 6), axis=1, return_index=True, return_counts=True),
    lambda v: np.unique(np.concatenate([v[:4], v[:4]]).reshape(2, 4), axis=0, equal_nan=False),
]
if "sorted" in inspect.signature(np.unique).parameters:  # NumPy 2.3
    UNIQUE_CALLS.append(lambda v: np.unique(v, sorted=False))
if hasattr(np, "unique_all"):
    UNIQUE_CALLS += [np.unique_values, np.unique_counts, np.unique_inverse, np.unique_all]


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint8) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("k", range(len(UNIQUE_CALLS)))
def test_unique_is_numpys_to_the_last_bit(k):
    # 0.0 and -0.0 are one value (NumPy returns the one its own order met first), NaNs one value
    # or several (equal_nan); the gather takes an entry with NumPy's bits, so signs and NaNs agree
    call, seen = UNIQUE_CALLS[k], []

    def f(v):
        seen.append(call(v))
        return v * 2.0

    jl.jacobian(f, SIGNED, mode="reverse")
    result, expected = seen[0], call(SIGNED)
    assert isinstance(result, tuple) == isinstance(expected, tuple)
    for ours, numpys in zip(*((result, expected) if isinstance(expected, tuple) else ((result,), (expected,)))):
        ours = getattr(ours, "primal", ours)
        assert ours.dtype == numpys.dtype and ours.shape == numpys.shape
        np.testing.assert_array_equal(_bits(ours), _bits(numpys))
    if isinstance(expected, tuple):  # unique's tuple, or the NumPy 2 functions' named tuples
        assert type(result).__name__ == type(expected).__name__
        assert getattr(result, "_fields", None) == getattr(expected, "_fields", None)
        assert all(not hasattr(r, "_trace") for r in result[1:])  # indices, inverse, counts: plain


def test_numpys_unique_zero_is_not_always_the_first_one():
    # what makes the test above bite: here NumPy's zero has the sign of a later occurrence
    assert _zero_not_first(SIGNED)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_each_unique_value_moves_with_its_first_occurrence(mode):
    x = np.array([2.0, 1.0, 2.0, 3.0, 1.0])
    # unique values 1 (first at 1), 2 (at 0), 3 (at 3): one-hot rows at those positions
    np.testing.assert_array_equal(jl.jacobian(np.unique, x, mode=mode), np.eye(5)[[1, 0, 3]])
    # rows of a matrix: the unique rows [1, 2] (first at row 0) and [3, 4] (row 1)
    X = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
    J = jl.jacobian(lambda v: np.unique(v, axis=0), X, mode=mode).reshape(4, 6)
    np.testing.assert_array_equal(J, np.eye(6)[[0, 1, 2, 3]])
    # equal_nan=False keeps the NaNs apart: each is gathered from its own position
    y = np.array([np.nan, 1.0, np.nan])
    J = jl.jacobian(lambda v: np.unique(v, equal_nan=False), y, mode=mode)
    np.testing.assert_array_equal(J, np.eye(3)[[1, 0, 2]])


def test_unique_counts_no_flops_in_either_mode():
    # The unique values are one gather of ar (0 flops); forward mode gathers the tangent (0),
    # reverse mode scatter-adds the cotangent onto distinct positions, never onto a filled one (0).
    x = np.array([2.0, 1.0, 2.0, 3.0, 1.0])
    for mode in ("forward", "reverse"):
        m = jl.measure(lambda v: np.unique(v, axis=None), x, mode=mode, repeat=1)
        assert all(cost == Cost(0, 0) for cost in m.cost.values()), m.cost


def test_a_compiled_unique_follows_the_repeats_of_each_input():
    def f(v):
        u, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        return u * counts + np.tanh(u[inverse]).sum()

    jac = jl.jit(jl.jacobian(f))
    for x in ([2.0, 1.0, 2.0, 3.0], [2.5, 1.0, 2.5, 3.0], [2.0, 1.0, 4.0, 3.0], [3.0, 1.0, 3.0, 2.0]):
        x = np.array(x)
        np.testing.assert_array_equal(jac(x), jl.jacobian(f, x))
    assert jac.compiles == 3  # the second input repeats the first's pattern: replayed


def test_unique_raises_numpys_errors():
    for f, error in ((lambda v: np.unique(v, axis=1), np.exceptions.AxisError),
                     (lambda v: np.unique(v.reshape(2, 3), axis=2), np.exceptions.AxisError)):
        with pytest.raises(error):
            f(x6)  # NumPy itself
        with pytest.raises(error):
            jl.jacrev(f)(x6)


# --- polyfit: NumPy's scaled least-squares fit, through lstsq ---------------------------------------
T6 = np.linspace(-1.0, 1.0, 6)
FITS = [
    ("y", lambda v: np.polyfit(T6, v[:6], 3, full=True), x12),
    ("two columns of y", lambda v: np.polyfit(T6, v.reshape(6, 2), 2, full=True), x12),
    ("weights and x", lambda v: np.polyfit(T6 + 0.1 * v[6:], v[:6], 2, w=v[6:] ** 2 + 0.5, full=True), x12),
    ("a given rcond", lambda v: np.polyfit(T6, v[:6], 4, rcond=1e-3, full=True), x12),
    ("more coefficients than points", lambda v: np.polyfit(T6[:3], v[:3], 4, full=True), x12),
    ("repeated x", lambda v: np.polyfit(np.repeat(T6[:3], 2), v[:6], 3, full=True), x12),
    ("covariance", lambda v: np.polyfit(T6, v[:6], 2, cov=True), x12),
    ("covariances of two columns", lambda v: np.polyfit(T6, v.reshape(6, 2), 1, cov=True), x12),
    ("unscaled covariance", lambda v: np.polyfit(T6 + 0.1 * v[6:], v[:6], 2, cov="unscaled"), x12),
    ("integer x", lambda v: np.polyfit(np.arange(6), v[:6], 1), x12),
]


@pytest.mark.parametrize("name, f, x", FITS, ids=[name for name, _, _ in FITS])
def test_polyfit_returns_numpys_results(name, f, x):
    # the coefficients come from pinv(lhs) @ rhs, NumPy's from LAPACK's gelsd: equal up to rounding;
    # the residuals, rank, singular values and rcond of full=True, and the covariances, likewise
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        jl.jacobian(lambda v: (seen.append(f(v)), v)[1], x, mode="reverse")
        expected = f(x)
    result = seen[0]
    for ours, numpys in zip(*((result, expected) if isinstance(expected, tuple) else ((result,), (expected,)))):
        ours = getattr(ours, "primal", ours)
        assert type(ours) is type(numpys) and np.shape(ours) == np.shape(numpys)
        assert np.result_type(ours) == np.result_type(numpys)
        np.testing.assert_allclose(ours, numpys, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_polyfit_short_of_rank_warns_as_numpy_does(mode):
    # Three points, five coefficients: NumPy's minimum-norm fit (of the scaled problem), with its
    # RankWarning. The 3×5 Vandermonde matrix has full row rank, so the fit is smooth in x and y.
    t, v = T6[:3], x3
    with pytest.warns(np.exceptions.RankWarning, match="Polyfit may be poorly conditioned"):
        np.polyfit(t, v, 4)  # NumPy itself
    with pytest.warns(np.exceptions.RankWarning, match="Polyfit may be poorly conditioned") as caught:
        J = jl.jacobian(lambda y: np.polyfit(t, y, 4), v, mode=mode)
    assert caught[0].filename == __file__  # pointing at the caller, as NumPy's does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        assert_fd_close(J, central_differences(lambda y: np.polyfit(t, y, 4), v), "polyfit in y")
        in_x = lambda s: np.polyfit(s, v, 4)  # noqa: E731
        assert_fd_close(jl.jacobian(in_x, t, mode=mode), central_differences(in_x, t), "polyfit in x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # full=True returns the rank instead of warning, as NumPy
        jl.jacobian(lambda y: np.polyfit(t, y, 4, full=True)[0], v, mode=mode)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_polyfit_at_repeated_x_differentiates_in_y_but_not_in_x(mode):
    # Six points at three places, four coefficients: the 6×4 Vandermonde matrix has rank 3. The fit
    # is still linear in y; in x the pseudo-inverse jumps, and lstsq's derivative refuses it.
    t = np.repeat(T6[:3], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        in_y = lambda y: np.polyfit(t, y, 3)  # noqa: E731
        assert_fd_close(jl.jacobian(in_y, x6, mode=mode), central_differences(in_y, x6), "polyfit in y")
        with pytest.raises(jl.DerivativeError, match="rank-deficient"):
            jl.jacobian(lambda s: np.polyfit(s, x6, 3), t, mode=mode)


def test_polyfit_counts_its_arithmetic():
    # n points, N = deg + 1 coefficients, r = 1 column of y, M = max(n, N), K = min(n, N). The
    # Vandermonde matrix: a cumprod over N - 1 columns, N - 2 flops per row; the column norms:
    # lhs * lhs (nN), N sums of n (N(n - 1)), N square roots; lhs / scale (nN); lstsq: pinv
    # (14MK² + 8K³ + K + Kn + 2NKn), x = a⁺ b (2Nn), the singular values for s and the rank
    # (⌊4MK² - 4K³/3⌋), the residuals b - a x (2nN + n), squared (n) and summed (n - 1) when
    # rank = N < n; the scaling undone, c / scale (N).
    def fit_flops(n, N):
        M, K = max(n, N), min(n, N)
        pinv = 14 * M * K ** 2 + 8 * K ** 3 + K + K * n + 2 * N * K * n
        residuals = 2 * n * N + 3 * n - 1 if N < n else 0
        return (n * (N - 2) + n * N + N * (n - 1) + n * N + pinv + 2 * N * n
                + math.floor(4 * M * K ** 2 - 4 * K ** 3 / 3) + residuals + N)

    assert fit_flops(6, 4) == 12 + 24 + 20 + 24 + (1344 + 512 + 4 + 24 + 192) + 48 + 298 + 65 + 4
    assert jl.count_flops(lambda v: np.polyfit(T6, v, 3), x6) == Cost(fit_flops(6, 4), 4)
    # weights multiply the rows of lhs (nN) and y (n) first
    assert jl.count_flops(lambda v: np.polyfit(T6, v, 3, w=T6 ** 2 + 1), x6) == Cost(fit_flops(6, 4) + 24 + 6, 4)
    # cov=True: lhsᵀ lhs (2nN²), its inverse (2N³), / outer(scale, scale) (N² + N²), the residual
    # variance resids / (n - N) (1) and the product (N²)
    assert jl.count_flops(lambda v: np.polyfit(T6, v, 3, cov=True)[1], x6) == Cost(
        fit_flops(6, 4) + 192 + 128 + 16 + 16 + 1 + 16, 4)
    # the derivative in y, n = 6 seeds in one forward pass: per seed a⁺ ḃ (2Nn) and ÷ scale (N),
    # and the residuals' tangent, computed though unused: a ẋ (2nN), ḃ minus that (n), times 2r
    # (n, the factor 2r once per pass: n) and summed (n - 1)
    m = jl.measure(lambda v: np.polyfit(T6, v, 3), x6, mode="forward", batch_size=6, repeat=1)
    assert m.cost["tangent"] == Cost(6 * (48 + 4 + 48 + 6 + 6 + 5) + 6, 0)
    # reverse, N = 4 seeds in one sweep: per seed ÷ scale (N) and a⁺ᵀ ḡ (2Nn); the residuals get
    # no cotangent
    m = jl.measure(lambda v: np.polyfit(T6, v, 3), x6, mode="reverse", batch_size=4, repeat=1)
    assert m.cost["cotangent"] == Cost(4 * (4 + 48), 0)


@pytest.mark.parametrize("f, error, message", [
    (lambda v: np.polyfit(T6, v, -1), ValueError, "expected deg >= 0"),
    (lambda v: np.polyfit(T6.reshape(2, 3), v.reshape(2, 3), 1), TypeError, "expected 1D vector for x"),
    (lambda v: np.polyfit(T6[:0], v[:0], 1), TypeError, "expected non-empty vector for x"),
    (lambda v: np.polyfit(T6, v.reshape(6, 1, 1), 1), TypeError, "expected 1D or 2D array for y"),
    (lambda v: np.polyfit(T6[:5], v, 1), TypeError, "expected x and y to have same length"),
    (lambda v: np.polyfit(T6, v, 1, w=np.ones((6, 1))), TypeError, "expected a 1-d array for weights"),
    (lambda v: np.polyfit(T6, v, 1, w=np.ones(5)), TypeError, "expected w and y to have the same length"),
    (lambda v: np.polyfit(T6[:2], v[:2], 1, cov=True), ValueError, "the number of data points must exceed order"),
])
def test_polyfit_raises_numpys_errors(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        f(x6)  # NumPy itself
    with pytest.raises(error, match=re.escape(message)):
        jl.jacrev(f)(x6)


# --- histogram2d and histogramdd: bins found on values, weights scatter-added into them -------------
# points in the plane: one NaN and one far out (outside the given ranges), ties in one cell
PX = np.array([0.1, 0.9, 0.4, 0.6, np.nan, 0.35, 0.15, 0.9])
PY = np.array([0.2, 0.8, 0.7, 0.3, 0.5, 9.0, 0.2, 0.8])
HISTOGRAMS = [
    lambda w: np.histogram2d(PX, PY, bins=2, range=[(0, 1), (0, 1)], weights=w),
    lambda w: np.histogram2d(PX, PY, bins=[3, [0, 0.25, 0.5, 1]], range=[(0, 1), None], weights=w, density=True),
    lambda w: np.histogram2d(PX[:4], PY[:4], bins=[0.0, 0.5, 1.0], weights=w[:4] ** 2),
    lambda w: np.histogramdd(np.stack([PX, PY, w], axis=1), bins=(2, 2, 3), range=[(0, 1), (0, 1), None],
                             weights=w),
    lambda w: np.histogramdd((PX[:4], PY[:4]), bins=(2, 3), weights=w[:4], density=True),
    lambda w: np.histogramdd(PY[:4], bins=3, weights=w[:4]),
]
W8 = np.array([0.5, -1.5, 2.0, 0.25, 3.0, -0.75, 1.25, 4.0])


@pytest.mark.parametrize("k", range(len(HISTOGRAMS)))
def test_weighted_histograms_are_numpys_to_the_last_bit(k):
    # the same bins and the same float64 sums, in the same order, as NumPy's bincount; its edges
    f, seen = HISTOGRAMS[k], []
    jl.jacobian(lambda w: (seen.append(f(w)), w)[1], W8, mode="reverse")
    hist, *edges = seen[0]
    expected_hist, *expected_edges = f(W8)
    assert hist.primal.dtype == expected_hist.dtype == np.float64
    np.testing.assert_array_equal(hist.primal, expected_hist)
    assert len(edges) == len(expected_edges)
    for ours, numpys in zip(edges, expected_edges):
        ours = [getattr(e, "primal", e) for e in ours] if type(ours) is list else ours  # traced along w ([3])
        assert type(ours) is type(numpys)
        np.testing.assert_equal(ours, numpys)
    # float32 weights give NumPy's float64 histogram too
    y = traced_value(lambda w: f(w)[0], W8.astype(np.float32))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, f(W8.astype(np.float32))[0])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_weighted_histograms_place_each_weight_in_its_cell(mode):
    # 2×2 cells of [0, 1]²: the NaN point and the one at y = 9 fall outside; points 1 and 7 share a cell
    J = jl.jacobian(lambda w: np.histogram2d(PX, PY, bins=2, range=[(0, 1), (0, 1)], weights=w)[0], W8, mode=mode)
    expected = np.zeros((2, 2, 8))
    for point, cell in ((0, (0, 0)), (1, (1, 1)), (2, (0, 1)), (3, (1, 0)), (6, (0, 0)), (7, (1, 1))):
        expected[cell + (point,)] = 1.0
    np.testing.assert_array_equal(J, expected)
    # the counts are piecewise constant in the coordinates: no derivative, and plain without weights
    J = jl.jacobian(lambda p: np.histogram2d(p, PY[:4], bins=2, weights=W8[:4])[0], PX[:4], mode=mode)
    np.testing.assert_array_equal(J, 0.0)
    counts = []
    jl.jacobian(lambda p: (counts.append(np.histogramdd((p, PY[:4]), bins=2)[0]), p)[1], PX[:4], mode=mode)
    assert not hasattr(counts[0], "_trace")
    np.testing.assert_array_equal(counts[0], np.histogramdd((PX[:4], PY[:4]), bins=2)[0])


def test_weighted_histograms_count_their_additions():
    # 8 weights into 2×2 cells: 2 outside, 6 inside in 4 cells (two pairs share one): a scatter-add
    # pays 1 flop per weight landing in an already-filled cell, 6 - 4 = 2
    f = lambda w: np.histogram2d(PX, PY, bins=2, range=[(0, 1), (0, 1)], weights=w)[0]  # noqa: E731
    assert jl.count_flops(f, W8) == Cost(2, 0)
    # density=True on B = 4 cells: the total (B - 1), the divisions by each axis' widths (2B) and by
    # the total (B), on top of the 2 additions
    g = lambda w: np.histogram2d(PX, PY, bins=2, range=[(0, 1), (0, 1)], weights=w, density=True)[0]  # noqa: E731
    assert jl.count_flops(g, W8) == Cost(2 + 3 + 8 + 4, 0)
    # the derivative: forward pushes each seed through the scatter-add (2 per seed, 8 seeds in one
    # pass); reverse gathers the cotangents back, for free
    assert jl.measure(f, W8, mode="forward", batch_size=8, repeat=1).cost["tangent"] == Cost(16, 0)
    assert jl.measure(f, W8, mode="reverse", repeat=1).cost["cotangent"] == Cost(0, 0)


def test_a_compiled_weighted_histogram_follows_the_points():
    # the cells are decided on the coordinates: a compiled Jacobian must not replay other cells
    def f(v):
        return np.histogram2d(v[:4], v[4:], bins=2, range=[(0, 1), (0, 1)], weights=np.sin(v[:4]))[0]

    jac = jl.jit(jl.jacobian(f))
    points = np.array([0.1, 0.9, 0.4, 0.6, 0.2, 0.8, 0.7, 0.3])
    for x in (points, points + 0.05, points[[1, 0, 2, 3, 4, 5, 6, 7]]):
        np.testing.assert_array_equal(jac(x), jl.jacobian(f, x))
    assert jac.compiles == 2  # the small move keeps every point in its cell


@pytest.mark.parametrize("f, message", [
    (lambda w: np.histogram2d(PX[:4], PY[:3], weights=w[:4]), "x and y must have the same length."),
    (lambda w: np.histogram2d(PX[:4], PY[:4], weights=w[:3]), "The weights and list don't have the same length."),
    (lambda w: np.histogramdd((PX[:4], PY[:4]), weights=w[:4].reshape(2, 2)), "object too deep for desired array"),
    (lambda w: np.histogram2d(PX, PY, weights=w), "autodetected range of [nan, nan] is not finite"),
    (lambda w: np.histogramdd(PX[:4], bins=(2, 3), weights=w[:4]), "The dimension of bins must be equal"),
    (lambda w: (np.bincount([[0, 1, 2]], weights=w[:3].reshape(1, 3)),), "would exceed the maximum number of dimension"),
    (lambda w: (np.bincount([0, -1, 2], weights=w[:3]),), "'list' argument must have no negative elements"),
    (lambda w: (np.bincount(np.array([0.0, 1.0]), weights=w[:2]),), "Cannot cast array data from dtype('float64')"),
])
def test_weighted_histograms_raise_numpys_errors(f, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)) as numpys:
        f(W8)  # NumPy itself
    with pytest.raises(numpys.type, match=re.escape(message)):
        jl.jacrev(lambda w: f(w)[0])(W8)


def test_copysign_of_a_traced_sign_gives_what_numpy_gives():
    """np.copysign(2.0, x[0]) is a NumPy scalar, which s -= 1 rebinds without touching an alias of it; a 0-d
    array (np.where's) would change the alias too."""
    def f(x):
        s = np.copysign(2.0, x[0])
        kept = s
        s -= 1.0
        return x * kept

    x = np.array([-1.0, 3.0])
    assert type(f(x)[0]) is np.float64 and f(x)[0] == 2.0  # NumPy's own
    np.testing.assert_array_equal(jl.jacobian(f, x), np.diag([-2.0, -2.0]))
    np.testing.assert_array_equal(jl.jit(jl.jacobian(f))(x), np.diag([-2.0, -2.0]))


@pytest.mark.parametrize("f", [
    lambda x: np.convolve(x, np.float32([1.0, 0.5])),
    lambda x: np.correlate(x, np.float32([1.0, 0.5, -2.0]), "same"),
    lambda x: np.convolve(np.float32([1.0, 0.5]), x, "valid"),
    lambda x: np.convolve(x, [1.0, 0.5]),  # a list is float64 to NumPy: so is the result
    lambda x: np.convolve(x, np.int8([1, 2])),  # int8 and float32 make float32
    lambda x: np.gradient(x, np.float64(0.5)),
    lambda x: np.gradient(x, np.array([0.0, 1.0, 3.0, 3.5])),
    lambda x: np.gradient(x, np.array([0.0, 1.0, 3.0, 3.5]), edge_order=2),
], ids=["convolve", "correlate", "convolve, x second", "a list kernel", "an int8 kernel", "gradient, a spacing",
        "gradient, coordinates", "gradient, edge_order=2"])
def test_float32_convolutions_and_gradients_keep_numpys_dtype_and_bits(f):
    """A plain float32 kernel (or float64 spacings) made the traced value float64, where NumPy's is float32, so
    that everything after it computed in float64 only where f was traced."""
    x = np.array([0.3, -1.2, 2.5, 0.7], np.float32)
    y = traced_value(f, x)
    assert y.dtype == f(x).dtype
    np.testing.assert_array_equal(y, f(x))
    assert_fd_close(jl.jacobian(f, x.astype(np.float64)), central_differences(f, x.astype(np.float64)))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("moment", [np.var, np.std])
def test_a_slice_the_mask_empties_leaves_the_other_slices_derivatives_finite(moment, mode):
    """np.std(x, axis=0, where=m) of a column m leaves out entirely is NaN there, as NumPy's; the entries kept
    have finite derivatives in both orders (a reverse sweep once carried 0 * NaN from the empty column into x)."""
    mask = np.array([True, False, True, False])
    x = np.random.default_rng(3).standard_normal((3, 4))

    def f(v):
        return moment(v, axis=0, where=mask, ddof=1)[[0, 2]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "Degrees of freedom <= 0" for the empty slices
        J = jl.jacobian(f, x, mode=mode)
        assert_fd_close(J, central_differences(f, x))
    assert np.isfinite(J).all()


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_slice_ddof_leaves_no_count_keeps_the_other_slices_derivatives_finite(mode):
    """np.var(x, axis=0, ddof=1, where=m) of a column keeping one element is NaN there, as NumPy's (0 / 0);
    the other columns' derivatives stay finite, where reverse mode once divided the column's zero cotangent by
    its zero count into the element it keeps."""
    mask = np.array([[True, True, True, False], [True, False, True, False], [True, False, False, False]])
    x = np.random.default_rng(4).standard_normal((3, 4))

    def f(v):
        return np.var(v, axis=0, ddof=1, where=mask)[[0, 2]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(np.var(x, axis=0, ddof=1, where=mask)[[1, 3]]).all()
        J = jl.jacobian(f, x, mode=mode)
        assert_fd_close(J, central_differences(f, x))
    assert np.isfinite(J).all()
