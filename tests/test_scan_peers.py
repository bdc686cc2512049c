"""`linear_scan` on the test cases of two peers, every backend, outputs and gradients against an fp64 loop.

- accelerated-scan 0.3.1, `tests/test_eq.py`: gates and tokens uniform in (0, 1), one sequence of 512 channels, lengths
  32 to 127,323, fp32, bf16 and fp16, its tolerances (`torch.testing.assert_close`), the loss `h.mean(L).sum()`.
- flash-linear-attention, `tests/ops/test_hgrn.py`: HGRN's gates a = exp(logsigmoid(g)) and inputs (1 - sigmoid(g)) x,
  an initial state, a loss on the outputs and on the final state, its shapes, its criterion (relative RMS error below
  0.005, or a largest error of at most 1e-6) for o, ht, dx, dg and dh0; its variable-length batches ("varlen": several
  sequences packed into one row, each with its own initial state) written as resets, a = 0 where a sequence starts.

Large sizes are marked slow (`pytest --nb-flags slow`, as for the notebooks' `#| slow` cells). On a CPU the Triton
kernels run in Triton's interpreter, a Python loop over each tile, so only their smallest cases run there.
"""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evotr_lib.mmrec.scan import linear_scan, mx, triton

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
SLOW = pytest.mark.skipif("'slow' not in config.getoption('--nb-flags').split()",
                          reason="a slow case: run it with pytest --nb-flags slow")
BACKENDS = ["ref", "torch"] + (["triton"] if triton is not None else []) + (["mlx"] if mx is not None else [])
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def fp64_scan(a, x, h0):
    "The recurrence h_t = a_t h_{t-1} + x_t as a loop in float64; autograd through it gives the exact gradients."
    hs, h = [], h0
    for a_t, x_t in zip(a.unbind(1), x.unbind(1)):
        h = a_t * h + x_t
        hs.append(h)
    return torch.stack(hs, 1)


def scan_and_grads(backend, a, x, h0, dh):
    "h = linear_scan(a, x, h0) on `backend` and its gradients (da, dx, dh0) for the output gradient dh, on the CPU."
    if backend == "mlx":
        to_mx = lambda t: mx.array(t.float().numpy()).astype(getattr(mx, str(t.dtype)[6:]))
        to_torch = lambda v: torch.from_numpy(np.array(v.astype(mx.float32))).to(a.dtype)
        (h,), grads = mx.vjp(lambda a, x, h0: linear_scan(a, x, h0), [to_mx(a), to_mx(x), to_mx(h0)], [to_mx(dh)])
        return to_torch(h), tuple(map(to_torch, grads))
    leaves = [t.to(DEVICE, copy=True).requires_grad_() for t in (a, x, h0)]
    h = linear_scan(*leaves, backend=backend)
    h.backward(dh.to(DEVICE))
    return h.detach().cpu(), tuple(t.grad.cpu() for t in leaves)


def exact_scan_and_grads(a, x, h0, dh):
    "The same in float64 on the same (rounded) inputs."
    leaves = [t.to(torch.float64, copy=True).requires_grad_() for t in (a, x, h0)]
    h = fp64_scan(*leaves)
    h.backward(dh.double())
    return h.detach(), tuple(t.grad for t in leaves)


def interpreted(backend): return backend == "triton" and not CUDA


# accelerated-scan: lengths, seeds and tolerances of its tests/test_eq.py

ACC_SEEDS = [3407, 4, 42, 57]
ACC_LENGTHS = [2**i for i in range(5, 17)] + [16323, 8000, 33753, 127323]
ACC_TOLERANCES = {torch.float32: dict(atol=1e-7, rtol=1.3e-6), torch.bfloat16: dict(atol=1e-1, rtol=1.6e-2),
                  torch.float16: dict(atol=12e-3, rtol=1e-3)}


def acc_scan_params():
    for seed in ACC_SEEDS:
        for L in ACC_LENGTHS:
            for dtype in ACC_TOLERANCES:
                for backend in BACKENDS:              # the last loop: cases that share inputs run one after another
                    if interpreted(backend) and L > 256: continue
                    fast = seed == 3407 and (L <= 4096 or L == 8000) and (
                        not interpreted(backend) or (L == 32 and dtype == torch.float32))
                    yield pytest.param(seed, L, dtype, backend, marks=[] if fast else [SLOW],
                                       id=f"L={L}-{DTYPE_NAMES[dtype]}-seed={seed}-{backend}")


@functools.lru_cache(maxsize=1)
def acc_scan_case(seed, L, dtype):
    "Inputs as accelerated-scan draws them (uniform gates and tokens, no initial state), its loss, the exact answer."
    g = torch.Generator().manual_seed(seed)
    a, x = (torch.rand(1, L, 512, generator=g, dtype=torch.float64).to(dtype) for _ in range(2))
    h0 = torch.zeros(1, 512, dtype=dtype)
    dh = torch.full_like(x, 1 / L)                                  # the gradient of h.mean(over L).sum()
    return (a, x, h0, dh), exact_scan_and_grads(a, x, h0, dh)


@pytest.mark.parametrize("seed, L, dtype, backend", list(acc_scan_params()))
def test_accelerated_scan_cases(seed, L, dtype, backend):
    inputs, (exact_h, (exact_da, exact_dx, _)) = acc_scan_case(seed, L, dtype)
    h, (da, dx, _) = scan_and_grads(backend, *inputs)
    for name, got, want in (("h", h, exact_h), ("da", da, exact_da), ("dx", dx, exact_dx)):
        torch.testing.assert_close(got, want.to(dtype), **ACC_TOLERANCES[dtype], msg=lambda m: f"{name}: {m}")


# flash-linear-attention: shapes, inputs and criterion of its tests/ops/test_hgrn.py

def assert_fla_close(name, want, got, ratio):
    "flash-linear-attention's check: a largest error of at most 1e-6, or a relative RMS error below `ratio`."
    err = got.double() - want.double()
    if err.abs().max() <= 1e-6: return
    rel = (err.pow(2).mean().sqrt() / (want.double().pow(2).mean().sqrt() + 1e-8)).item()
    assert rel < ratio, f"{name}: relative RMS error {rel:.4f}, not below {ratio}"


def fla_ratio(backend, dtype):
    "0.005, fla's; 0.01 for bf16 in Triton's CPU interpreter, which truncates bf16 stores where a GPU rounds them."
    return 0.01 if interpreted(backend) and dtype == torch.bfloat16 else 0.005


def hgrn_inputs(B, T, D, N, dtype, seed=42):
    "HGRN's x, g (log gates), N initial states, and the gradients do, dht of the outputs and the final states."
    gen = torch.Generator().manual_seed(seed)
    x, g = torch.randn(B, T, D, generator=gen), torch.randn(B, T, D, generator=gen)
    x, g = (1 - g.sigmoid()) * x, F.logsigmoid(g)
    h0, do, dht = (torch.randn(*shape, generator=gen) for shape in ((N, D), (B, T, D), (N, D)))
    return [t.to(dtype) for t in (x, g, h0, do, dht)]


def fla_params(names, shapes, dtypes, interpreter_fast=()):
    "The cases; in Triton's interpreter only sequences up to 63 steps (minutes beyond), and those in interpreter_fast."
    for shape in shapes:
        for dtype in dtypes:
            for backend in BACKENDS:
                if interpreted(backend) and shape[-2] > 63: continue
                fast = not interpreted(backend) or (shape, dtype) in interpreter_fast
                case = "-".join(f"{name}={size}" for name, size in zip(names, shape))
                yield pytest.param(*shape, dtype, backend, marks=[] if fast else [SLOW],
                                   id=f"{case}-{DTYPE_NAMES[dtype]}-{backend}")


FLA_SHAPES = [(2, T, D) for T in (1, 15, 63, 300) for D in (500, 1024)]     # (B, T, D)
FLA_COMPILER_SHAPES = [(1, 4096, D) for D in (500, 1024)]                   # its COMPILER_MODE shapes
FLA_VARLEN_SHAPES = [(T, D) for T in (63, 286, 300, 512) for D in (500, 1024)]


@pytest.mark.parametrize("B, T, D, dtype, backend", [
    *fla_params("BTD", FLA_SHAPES, (torch.float32, torch.bfloat16), [((2, 15, 500), torch.bfloat16)]),
    *(pytest.param(*p.values, marks=[SLOW], id=p.id)
      for p in fla_params("BTD", FLA_COMPILER_SHAPES, (torch.float32, torch.bfloat16)))])
def test_fla_hgrn_cases(B, T, D, dtype, backend):
    x, g, h0, do, dht = hgrn_inputs(B, T, D, B, dtype)
    dh = do.clone()
    dh[:, -1] += dht                                                # the loss (o * do).sum() + (ht * dht).sum()
    h, (da, dx, dh0) = scan_and_grads(backend, g.exp(), x, h0, dh)
    leaves = [t.double().requires_grad_() for t in (g, x, h0)]
    exact_h = fp64_scan(leaves[0].exp(), leaves[1], leaves[2])
    ((exact_h * do.double()).sum() + (exact_h[:, -1] * dht.double()).sum()).backward()
    exact_dg, exact_dx, exact_dh0 = (t.grad for t in leaves)
    for name, want, got in (("o", exact_h, h), ("ht", exact_h[:, -1], h[:, -1]), ("dx", exact_dx, dx),
                            ("dg", exact_dg, da * g.exp()), ("dh0", exact_dh0, dh0)):
        assert_fla_close(name, want, got, fla_ratio(backend, dtype))


@pytest.mark.parametrize("T, D, dtype, backend",
                         list(fla_params("TD", FLA_VARLEN_SHAPES, (torch.float32,), [((63, 500), torch.float32)])))
def test_fla_hgrn_varlen_as_resets(T, D, dtype, backend, N=2):
    "N sequences packed in one row of length T; where sequence i starts, s, (a_s, x_s) becomes (0, x_s + a_s h0[i])."
    x, g, h0, do, dht = hgrn_inputs(1, T, D, N, dtype)
    starts = [0, *sorted((16 + torch.randperm(T - 16, generator=torch.Generator().manual_seed(42))[:N - 1]).tolist())]
    ends = starts[1:] + [T]
    a = g.exp()
    a_reset, x_reset = a.clone(), x.clone()
    for i, s in enumerate(starts[1:], 1):
        a_reset[:, s], x_reset[:, s] = 0.0, x[:, s] + a[:, s] * h0[i]
    dh = do.clone()
    for i, e in enumerate(ends): dh[:, e - 1] += dht[i]              # the loss on each sequence's final state
    h, (da_reset, dx, dh0_first) = scan_and_grads(backend, a_reset, x_reset, h0[:1], dh)
    da, dh0 = da_reset.clone(), torch.empty_like(h0)                # the chain rule through the resets
    dh0[0] = dh0_first[0]
    for i, s in enumerate(starts[1:], 1):
        da[:, s], dh0[i] = dx[:, s] * h0[i], dx[0, s] * a[0, s]

    leaves = [t.double().requires_grad_() for t in (g, x, h0)]      # the exact answer: each sequence on its own
    exact = [fp64_scan(leaves[0][:, s:e].exp(), leaves[1][:, s:e], leaves[2][i:i + 1])
             for i, (s, e) in enumerate(zip(starts, ends))]
    exact_h, exact_ht = torch.cat(exact, 1), torch.cat([h_i[:, -1] for h_i in exact])
    ((exact_h * do.double()).sum() + (exact_ht * dht.double()).sum()).backward()
    exact_dg, exact_dx, exact_dh0 = (t.grad for t in leaves)
    for name, want, got in (("o", exact_h, h), ("ht", exact_ht, h[0, [e - 1 for e in ends]]), ("dx", exact_dx, dx),
                            ("dg", exact_dg, da * a), ("dh0", exact_dh0, dh0)):
        assert_fla_close(name, want, got, fla_ratio(backend, dtype))
