"""``gitml serve`` start-up: spawn to the first answered prediction, vs a plain FastAPI app.

The floor is what a user would otherwise deploy: a FastAPI app under uvicorn that loads
the same model folder with the library's own loader (torch or skops, preprocessing) and
answers one JSON row. ``gitml serve --bundle`` pays on top: verifying the bundle's
manifest, the signature, the request log's writer, the OpenAPI document, warm-up. Both run
``--repeats`` times, interleaved, each in a fresh process on a free loopback port; reported
per variant: best and median seconds to the first 200, and the ratio of the bests.

Usage: python benchmarks/serve_startup.py [--bundle models/bundle] [--repeats 5] [--src OTHER_TREE/src]
(``--src`` times another checkout's gitml, e.g. a ``git worktree`` of an older commit.)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PLAIN_APP = '''
import sys, pandas as pd, uvicorn
from fastapi import FastAPI, Request
from gitml.data.preprocess import Preprocessor
from gitml.models import load_model
model_dir = sys.argv[1]
model, prep = load_model(model_dir), Preprocessor.load(model_dir + "/preprocessor.json")
app = FastAPI()

@app.post("/invocations")
async def invocations(request: Request):
    rows = pd.DataFrame((await request.json())["dataframe_records"])
    return {"predictions": model.predict_proba(prep.transform(rows)).tolist()}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_answer(command: list[str], port: int, body: dict, timeout: float = 120) -> float:
    """Seconds from spawning ``command`` to its first 200 on POST /invocations."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        while time.perf_counter() - started < timeout:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=5).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited {process.returncode} before answering")
            time.sleep(0.02)
        raise RuntimeError(f"{command[:3]} did not answer in {timeout}s")
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "models/bundle")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the gitml source tree to time")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(args.src.resolve())
    sys.path.insert(0, str(ROOT / "src"))
    from gitml.package.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    body = {"dataframe_records": bundle.reference().head(1).to_dict(orient="records")}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "plain_app.py"
        script.write_text(PLAIN_APP)
        variants = {
            "plain FastAPI + the model": lambda port: [sys.executable, str(script), str(args.bundle / "model"), str(port)],
            "gitml serve --bundle": lambda port: [sys.executable, "-m", "gitml", "serve", "--bundle", str(args.bundle),
                                                  "--port", str(port), "--log-dir", str(Path(tmp) / f"logs-{port}")],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, command in variants.items():
                port = free_port()
                times[name].append(first_answer(command(port), port, body))
    floor = min(times["plain FastAPI + the model"])
    print(f"{'variant':<28} {'best s':>7} {'median s':>9} {'x floor':>8}   (load: {os.getloadavg()[0]:.2f})")
    for name, values in times.items():
        print(f"{name:<28} {min(values):>7.2f} {statistics.median(values):>9.2f} {min(values) / floor:>8.2f}")
    print(json.dumps({name: values for name, values in times.items()}))


if __name__ == "__main__":
    main()
