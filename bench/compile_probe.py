"""Probe: does torch.compile of the Paraformer encoder/decoder speed up large batches on this GPU?"""
import logging, sys, time, json
from pathlib import Path
import torch
from bench.model_speed import _load, model_rows
logging.basicConfig(level=logging.INFO)
model_dir, corpus, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
res = {}
try:
    import triton; res["triton"] = triton.__version__
except Exception as e:
    res["triton"] = repr(e)
eng = _load(model_dir, "bf16", False)
res["eager"] = model_rows(eng, corpus, [32, 256], 1.5)
net = eng._model.net
for mode in sys.argv[4].split(","):
    t0 = time.perf_counter()
    try:
        torch._dynamo.reset()
        net.encoder.forward = torch.compile(net.encoder.forward.__func__.__get__(net.encoder), dynamic=True, mode=mode or None)
        net.decoder.forward = torch.compile(net.decoder.forward.__func__.__get__(net.decoder), dynamic=True, mode=mode or None)
        rows = model_rows(eng, corpus, [32, 256], 1.5)
        res[f"compile:{mode}"] = {"rows": rows, "first_s": round(time.perf_counter() - t0, 1)}
    except Exception as e:
        res[f"compile:{mode}"] = repr(e)[:2000]
    print(json.dumps(res)[-3000:], flush=True)
    out.write_text(json.dumps(res, indent=1))
