"""A real ComfyUI server (`main.py --cpu`) with this pack on an extra custom_nodes path."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import COMFYUI_PATH, PACK_DIR_NAME, PACK_ROOT  # noqa: E402


class ComfyServer:
    def __init__(self, url: str, base: Path, log: Path, process: subprocess.Popen):
        self.url, self.base, self.log_path, self.process = url, base, log, process

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def models_dir(self) -> Path:
        return self.base / "models"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def post(self, path: str, payload: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def queue(self, prompt: dict, extra_data: dict | None = None) -> str:
        """POST /prompt (the server validates the whole graph first); returns the prompt id.
        extra_data: as the frontend sends it, e.g. {"extra_pnginfo": {"workflow": <the UI workflow>}}."""
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": "ia-tests", "extra_data": extra_data or {}})
        assert status == 200 and not body.get("node_errors"), f"/prompt refused the workflow: {json.dumps(body)[:2000]}"
        return body["prompt_id"]

    def wait_idle(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            queue = self.get("/queue")
            if not queue["queue_running"] and not queue["queue_pending"]:
                return
            time.sleep(0.5)
        raise AssertionError("the server queue did not drain")

    def run_prompt(self, prompt: dict, timeout: float = 600, extra_data: dict | None = None) -> dict:
        """Queue an API-format prompt and wait for its /history entry; raises on an execution error."""
        prompt_id = self.queue(prompt, extra_data)
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = self.get(f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"].get("status_str") == "error":
                    messages = [m for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
                    raise AssertionError(f"prompt failed: {json.dumps(messages)[:4000]}")
                return entry
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s\n{self.log()[-4000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base: Path, front_end_root: Path | None = None) -> ComfyServer:
    """Start ComfyUI with its data under `base` and this pack linked into base/extra_nodes;
    `front_end_root` serves another frontend build than the pinned one (`--front-end-root`)."""
    extra_nodes = base / "extra_nodes"
    extra_nodes.mkdir(parents=True, exist_ok=True)
    link = extra_nodes / PACK_DIR_NAME
    if not link.exists():
        link.symlink_to(PACK_ROOT, target_is_directory=True)
    config = base / "extra_model_paths.yaml"
    config.write_text(f"insertanywhere_tests:\n  base_path: {base}\n  custom_nodes: extra_nodes\n")
    for sub in ("input", "output", "temp", "models", "user", "custom_nodes"):
        (base / sub).mkdir(exist_ok=True)
    port = _free_port()
    log = base / "server.log"
    # INSERTANYWHERE_FRONTEND_ROOT: a frontend's static folder for every server of the session instead of
    # the pinned package (COMFYUI_FRONTEND_ROOT adds one to the template tests' parameters instead)
    frontend = front_end_root or os.environ.get("INSERTANYWHERE_FRONTEND_ROOT")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--base-directory", str(base), "--extra-model-paths-config", str(config),
         "--disable-auto-launch", "--dont-print-server", *(["--front-end-root", str(frontend)] if frontend else [])],
        cwd=COMFYUI_PATH, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
    )
    server = ComfyServer(f"http://127.0.0.1:{port}", base, log, process)
    deadline = time.time() + 240
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited early:\n{server.log()[-4000:]}")
        try:
            server.get("/system_stats")
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    process.kill()
    raise RuntimeError(f"ComfyUI did not start in time:\n{server.log()[-4000:]}")


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    yield from served(tmp_path_factory.mktemp("comfy"))


@pytest.fixture(scope="module")
def empty_models_server(tmp_path_factory):
    """A server of the module's own, whose models folders stay empty (other tests add tiny models to the
    session's server)."""
    yield from served(tmp_path_factory.mktemp("empty_models"))


def served(base: Path, front_end_root: Path | None = None):
    """Yield a server started on `base`; stop it afterwards."""
    if not (COMFYUI_PATH and Path(COMFYUI_PATH, "main.py").is_file()):
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout to run the end-to-end tier")
    server = start_server(base, front_end_root)
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


FULL_UMT5_VERSION = 1  # bump when write_full_size_umt5_fp8 changes what it writes
FULL_UMT5_DISK_BYTES = 6_000_000_000  # the random UMT5-XXL file (5.7 GB)
FULL_UMT5_MEMORY_BYTES = 13_000_000_000  # ComfyUI's peak while it loads that file (file + model, 11.8 GB measured)


@pytest.fixture(scope="session")
def full_umt5(tmp_path_factory):
    """A random full-size UMT5-XXL text encoder file, the only one ComfyUI's CLIPLoader takes for Wan.

    Kept as one file beside pytest's numbered temp folders (which pytest rotates), reused by later
    sessions and written under a temporary name first: an interrupted session leaves no half file and
    no second 5.7 GB copy."""
    import tiny_models

    root = tmp_path_factory.getbasetemp().parent
    path = root / f"insertanywhere_umt5_xxl_random_fp8_v{FULL_UMT5_VERSION}.safetensors"
    free_disk = shutil.disk_usage(root).free
    if not path.is_file() and free_disk < FULL_UMT5_DISK_BYTES + 2_000_000_000:
        pytest.skip(f"the native Wan template needs a full-size text encoder: {FULL_UMT5_DISK_BYTES / 1e9:.0f} GB "
                    f"free disk under {root}, {free_disk / 1e9:.1f} GB free")
    available = _memory_available()
    if available is not None and available < FULL_UMT5_MEMORY_BYTES:
        pytest.skip(f"the native Wan template's full-size text encoder needs {FULL_UMT5_MEMORY_BYTES / 1e9:.0f} GB "
                    f"of free memory while ComfyUI loads it; {available / 1e9:.1f} GB available")
    if not path.is_file():
        partial = path.with_suffix(f".{os.getpid()}.partial")
        try:
            tiny_models.write_full_size_umt5_fp8(partial)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def _memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
