"""Benchmark `evotr_lib.mmrec.scan.linear_scan` on a GPU against the device's copy bandwidth and against peers.

GB/s counts the minimum traffic of a scan: 3 tensors forward (read a and x, write h) and 8 forward+backward
(backward: read a, h and dh, write da and dx). Errors are relative RMS against an fp64 scan of the same
(rounded) inputs. accelerated-scan works in (B, D, L); it is timed with the two transposes a (B, L, D) model
needs around it, and without them. The naive loop is timed at the shortest L only.

    python bench/scan.py                        # on a CUDA machine; writes bench/results/scan_<gpu>.md
    python bench/scan.py --smoke --out /tmp/x   # tiny sizes on any machine (CPU: Triton's interpreter)
"""
import argparse, datetime, importlib, importlib.metadata, os, platform, re, sys, time
from pathlib import Path

if "--smoke" in sys.argv and not os.environ.get("CUDA_VISIBLE_DEVICES") and "TRITON_INTERPRET" not in os.environ:
    import torch as _t
    if not _t.cuda.is_available(): os.environ["TRITON_INTERPRET"] = "1"   # before evotr_lib.mmrec.scan defines its kernels
import torch
from evotr_lib.mmrec.scan import linear_scan
from _common import machine as bench_machine, machine_slug, write_results


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def timed(fn, dev, reps):
    "Median seconds of fn() over `reps` runs after two warm-ups."
    for _ in range(2): fn()
    sync(dev); ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); sync(dev); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def copy_bandwidth(dev, nbytes, reps):
    "GB/s of a device-to-device copy (read + write counted)."
    x = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
    y = torch.empty_like(x)
    return 2 * nbytes / timed(lambda: y.copy_(x), dev, reps) / 1e9


def rel_rms(y, ref):
    y, ref = y.double(), ref.double()
    return ((y - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()


def peer_scan():
    "accelerated-scan's Triton scan, (B, D, L) layout, or None if it is not installed."
    for mod in ("accelerated_scan.scalar", "accelerated_scan.triton"):
        try: return mod, importlib.import_module(mod).scan
        except ImportError: continue
    return None, None


def loop_scan(a, x):
    h, out = torch.zeros_like(x[:, 0]), torch.empty_like(x)
    for t in range(x.shape[1]):
        h = a[:, t] * h + x[:, t]; out[:, t] = h
    return out


def providers(peer):
    ps = {"evotr triton": lambda a, x: linear_scan(a, x, backend="triton"),
          "evotr torch (chunked)": lambda a, x: linear_scan(a, x, backend="torch")}
    if peer:
        t = lambda u: u.transpose(1, 2).contiguous()
        ps["accelerated-scan + transposes"] = lambda a, x: t(peer(t(a), t(x)))
        ps["accelerated-scan, (B, D, L) inputs"] = "pre-transposed"
    ps["naive loop"] = loop_scan
    return ps


def run(B, Ds, Ls, dtypes, reps, dev):
    peer_name, peer = peer_scan()
    rows = []
    for dtype in dtypes:
        for D in Ds:
            for L in Ls:
                g = torch.Generator(device=dev).manual_seed(0)
                a = (0.9 + 0.1 * torch.rand(B, L, D, device=dev, generator=g)).to(dtype)
                x = torch.randn(B, L, D, device=dev, generator=g).to(dtype)
                dh = torch.randn(B, L, D, device=dev, generator=g).to(dtype)
                ref = linear_scan(a[:1].double(), x[:1].double(), backend="torch")   # fp64 truth, first sequence
                nbytes = B * L * D * a.element_size()
                for name, f in providers(peer).items():
                    if name == "naive loop" and L != min(Ls): continue
                    pow2 = L & (L - 1) == 0
                    if name.startswith("accelerated-scan") and not pow2:
                        rows.append((name, dtype, D, L, "fwd", None, None, None, "needs power-of-two L")); continue
                    if f == "pre-transposed":
                        at, xt, dht = (u.transpose(1, 2).contiguous() for u in (a, x, dh))
                        f_t = lambda: peer(at, xt)
                        err = rel_rms(f_t()[:1].transpose(1, 2), ref)
                        inputs = (at, xt, dht)
                        fn = lambda a_, x_: peer(a_, x_)
                    else:
                        err = rel_rms(f(a, x)[:1], ref)
                        inputs, fn = (a, x, dh), f
                    for mode, tensors in (("fwd", 3), ("fwd+bwd", 8)):
                        try:
                            if mode == "fwd":
                                with torch.no_grad(): s = timed(lambda: fn(inputs[0], inputs[1]), dev, reps)
                            else:
                                ag, xg = inputs[0].detach().requires_grad_(), inputs[1].detach().requires_grad_()
                                s = timed(lambda: torch.autograd.grad(fn(ag, xg), (ag, xg), inputs[2]), dev, reps)
                            rows.append((name, dtype, D, L, mode, s * 1e3, tensors * nbytes / s / 1e9, None, f"{err:.1e}"))
                        except Exception as e:   # a peer that fails (OOM, illegal address) is reported, not hidden
                            rows.append((name, dtype, D, L, mode, None, None, None, f"failed: {type(e).__name__}: {str(e)[:80]}"))
                        if dev.type == "cuda": torch.cuda.empty_cache()
                del a, x, dh, ref
    return peer_name, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any device (for CI)")
    p.add_argument("--reps", type=int, default=None)
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.smoke: B, Ds, Ls, reps = 1, [16], [64, 65], args.reps or 1
    else:
        if dev.type != "cuda": sys.exit("bench/scan.py measures GPU kernels: run it on a CUDA machine (or use --smoke)")
        B, Ds, Ls, reps = 8, [1024, 2048], [2048, 8192, 32768, 65536, 32769], args.reps or 10
    copy_gbs = copy_bandwidth(dev, B * max(Ls) * max(Ds) * 4, reps)
    peer_name, rows = run(B, Ds, Ls, [torch.float32, torch.bfloat16], reps, dev)

    machine = bench_machine(dev)
    versions = {k: importlib.metadata.version(k) for k in ("torch", "triton") if importlib.util.find_spec(k)}
    if peer_name: versions["accelerated-scan"] = importlib.metadata.version("accelerated-scan")
    lines = [f"# linear_scan benchmark on {machine}", "",
             f"{datetime.date.today()}; {', '.join(f'{k} {v}' for k, v in versions.items())}; B={B}; "
             f"gates in (0.9, 1). Device copy bandwidth: **{copy_gbs:.0f} GB/s**. GB/s counts 3 tensors (fwd) or 8 (fwd+bwd); "
             "error: relative RMS of the output vs an fp64 scan of the same inputs." + (" SMOKE RUN: tiny sizes, not a measurement." if args.smoke else ""),
             "", "| provider | dtype | D | L | pass | ms | GB/s | % of copy | rel. error |", "|---|---|---|---|---|---|---|---|---|"]
    for name, dtype, D, L, mode, ms, gbs, _, note in rows:
        pct = f"{100 * gbs / copy_gbs:.0f}%" if gbs else ""
        lines.append(f"| {name} | {str(dtype).removeprefix('torch.')} | {D} | {L} | {mode} | {'' if ms is None else f'{ms:.3f}'} | "
                     f"{'' if gbs is None else f'{gbs:.0f}'} | {pct} | {note} |")
    path = write_results(f"scan_{machine_slug(dev)}", lines, out=Path(args.out))
    print("\n".join(lines)); print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
