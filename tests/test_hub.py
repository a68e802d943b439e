"""A real JupyterHub, as docs/hub.md sets one up: three students log in at the same time and each runs notebooks
01–03 (test model) in their own single-user server, with their own data folder, while the dataset and the
weights come from one shared read-only folder.

JupyterHub from PyPI (requirements-dev.txt), its proxy configurable-http-proxy from the npm registry (installed
here into .venv/hub-proxy/ on first use), the dummy authenticator (a password for everyone), and the
local-process spawner: each student is a system user (made with useradd, removed afterwards) whose server runs
as that user. So it needs Linux, root and npm; elsewhere it is skipped, saying why.
"""
import asyncio
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers.storage.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
PROXY_DIR = PROJECT_ROOT / ".venv" / "hub-proxy"
PROXY_VERSION = "4"  # configurable-http-proxy's major version that JupyterHub 5 and 6 use
NOTEBOOKS = ("01_dataset.ipynb", "02_dataloaders.ipynb", "03_model_surgery.ipynb")
STUDENTS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command():
    """configurable-http-proxy from the npm registry, into .venv/hub-proxy/ (once)."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    local = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
    if not local.exists():
        if not shutil.which("npm"):
            pytest.skip("JupyterHub needs its proxy from the npm registry, and npm is missing "
                        "(Debian: apt-get install npm; .ci/run installs it)")
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(PROXY_DIR),
                        f"configurable-http-proxy@{PROXY_VERSION}"], check=True, capture_output=True, timeout=300)
    return str(local)


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Three system users with private homes (mode 0700), removed afterwards."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("the JupyterHub test makes system users: it needs Linux and root")
    pytest.importorskip("jupyterhub", reason="jupyterhub is a test dependency (requirements-dev.txt)")
    tag = secrets.token_hex(3)
    names = [f"wb{tag}{who}" for who in ("ada", "bob", "cy")[:STUDENTS]]
    opened = {folder: folder.stat().st_mode for folder in untraversable_folders()}
    try:
        for folder in opened:  # others may pass through (not list): for this test only
            folder.chmod(opened[folder] | 0o001)
        for name in names:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "-K", "HOME_MODE=0700", name],
                           check=True, capture_output=True)
        yield names
    finally:
        for name in names:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        for folder, mode in opened.items():
            folder.chmod(mode)


def as_user(name, *command, **kwargs):
    return subprocess.run(["runuser", "-u", name, "--", *command], capture_output=True, text=True, **kwargs)


def untraversable_folders():
    """Folders above the Python and the workbook that other users cannot enter (e.g. /root, when Python is
    pyenv's under /root): the students' servers run that Python, as on a hub where it lies in /opt."""
    paths = {Path(os.path.realpath(sys.executable)), Path(sys.base_prefix).resolve(), PROJECT_ROOT}
    folders = {parent for path in paths for parent in path.parents}
    return sorted(folder for folder in folders if not folder.stat().st_mode & 0o001)


@pytest.fixture(scope="module")
def shared(hf_weights):
    """The course's shared folder, read-only for students: the dataset and a (tiny) GPT-2 weights folder."""
    import tempfile

    from safetensors.torch import save_file

    folder = Path(tempfile.mkdtemp(prefix="workbook-shared-"))  # not below pytest's folder, which only root may enter
    shutil.copy(PROJECT_ROOT / "datasets" / "sms_spam_collection.zip", folder / "sms_spam_collection.zip")
    (folder / "gpt2" / "gpt2-tiny").mkdir(parents=True)
    save_file(hf_weights(n_layers=2, context_length=1024), str(folder / "gpt2" / "gpt2-tiny" / "model.safetensors"))
    for path in [folder, *folder.rglob("*")]:  # root's, readable by all, writable by nobody else
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield folder
    shutil.rmtree(folder)


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_uid)
            for p in sorted(Path(folder).rglob("*"))}


HUB_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {state!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {state!r} + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = {state!r} + "/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.notebook_dir = "~/spam-workbook"
c.Spawner.cpu_limit = 1  # docs/hub.md; this spawner does not enforce it, but sets CPU_LIMIT, which helpers reads
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# docs/hub.md: each student's own data folder; the dataset and the weights from the shared read-only folder
c.Spawner.environment = {{
    "WORKBOOK_DATA_DIR": "~/workbook-data",  # the workbook expands ~ to each student's home
    "WORKBOOK_GPT2_DIR": {shared!r} + "/gpt2",
    "WORKBOOK_SMS_ZIP": {shared!r} + "/sms_spam_collection.zip",
    "WORKBOOK_TEST_MODEL": "1",
    "TQDM_DISABLE": "1",
}}
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "course-test", "services": ["course-test"],
                             "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory, students, shared):
    state = tmp_path_factory.mktemp("hub")
    ports = {name: free_port() for name in ("port", "hub_port", "proxy_api_port")}
    token, password = secrets.token_hex(16), secrets.token_hex(8)
    (state / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        **ports, proxy=proxy_command(), state=str(state), password=password, singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
        shared=str(shared), token=token))
    log = open(state / "hub.log", "w")
    process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(state / "jupyterhub_config.py")], cwd=state,
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    url = f"http://127.0.0.1:{ports['port']}"
    import requests

    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/hub/api", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.5)
        else:
            pytest.fail("JupyterHub did not answer within 60 s:\n" + (state / "hub.log").read_text()[-3000:])
        if process.poll() is not None:
            pytest.fail("JupyterHub stopped:\n" + (state / "hub.log").read_text()[-3000:])
        yield {"url": url, "token": token, "password": password, "log": state / "hub.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# --------------------------------------------------------------------------- a student's session
def log_in(hub, name):
    """What a student's browser does: the login form, then the hub starts the student's server."""
    import requests

    session = requests.Session()
    session.get(f"{hub['url']}/hub/login", timeout=30)
    response = session.post(f"{hub['url']}/hub/login?next=", timeout=120,
                            data={"username": name, "password": hub["password"],
                                  "_xsrf": session.cookies.get("_xsrf", "")})
    assert response.ok, f"{name} could not log in ({response.status_code}):\n" + hub["log"].read_text()[-3000:]
    return session


def wait_for_server(hub, name, timeout=120):
    import requests

    headers = {"Authorization": f"token {hub['token']}"}
    deadline = time.time() + timeout
    while time.time() < deadline:
        user = requests.get(f"{hub['url']}/hub/api/users/{name}", headers=headers, timeout=30).json()
        server = user.get("servers", {}).get("", {})
        if server.get("ready"):
            return
        if not server.get("pending"):  # not started by the login (an older hub): start it
            requests.post(f"{hub['url']}/hub/api/users/{name}/server", headers=headers, timeout=30)
        time.sleep(1)
    raise AssertionError(f"{name}'s server did not start:\n" + hub["log"].read_text()[-3000:])


def user_token(hub, name):
    import requests

    response = requests.post(f"{hub['url']}/hub/api/users/{name}/tokens", timeout=30,
                             headers={"Authorization": f"token {hub['token']}"},
                             json={"note": "course test", "expires_in": 3600})
    assert response.ok, response.text
    return response.json()["token"]


async def run_notebook(base, token, path, extra=()):
    """Run every code cell of ``path`` (relative to the student's server), then the code in ``extra``, in a new
    kernel of that server, over the Jupyter Server API (a session, then the kernel's websocket); the first error,
    or None."""
    import nbformat
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {token}"}
    client = AsyncHTTPClient()
    notebook = json.loads((await client.fetch(f"{base}/api/contents/{path}?content=1", headers=headers)).body)
    cells = [cell.source for cell in nbformat.from_dict(notebook["content"]).cells if cell.cell_type == "code"]
    cells += list(extra)
    body = json.dumps({"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}})
    session = json.loads((await client.fetch(f"{base}/api/sessions", method="POST", headers=headers, body=body)).body)
    kernel = session["kernel"]["id"]
    ws_base = base.replace("http://", "ws://")
    socket_ = await websocket_connect(HTTPRequest(f"{ws_base}/api/kernels/{kernel}/channels", headers=headers))
    try:
        for source in cells:
            msg_id = uuid.uuid4().hex
            await socket_.write_message(json.dumps({
                "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                message = await asyncio.wait_for(socket_.read_message(), timeout=600)
                if message is None:
                    return f"{path}: the kernel's connection closed (killed?) in cell {source[:80]!r}"
                message = json.loads(message)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "error":
                    return f"{path}: {message['content']['ename']}: {message['content']['evalue']} in {source[:80]!r}"
                if message["msg_type"] == "execute_reply":
                    break
    finally:
        socket_.close()
        await client.fetch(f"{base}/api/sessions/{session['id']}", method="DELETE", headers=headers)
    return None


#: Run in each student's kernel after the notebooks: GPT-2's weights (a tiny GPT-2-format file standing in for
#: the 500 MB one) load from the shared read-only WORKBOOK_GPT2_DIR; PyTorch uses the 1 CPU the hub gives.
WEIGHTS_CHECK = """
import os
from helpers import download_and_load_gpt2
from helpers.gpt import model_configs
from helpers.weights import HF_REPOS
model_configs["gpt2-tiny (test)"] = {"emb_dim": 32, "n_layers": 2, "n_heads": 4}
HF_REPOS["gpt2-tiny (test)"] = "gpt2-tiny"
os.environ.pop("WORKBOOK_TEST_MODEL")
model = download_and_load_gpt2("gpt2-tiny (test)")
assert tuple(model.tok_emb.weight.shape) == (50257, 32)
import helpers, torch
assert torch.get_num_threads() == 1 and "CPU_LIMIT" in helpers.THREADS_NOTE, helpers.THREADS_NOTE
"""


def student_work(hub, name, results):
    try:
        base = f"{hub['url']}/user/{name}"
        token = user_token(hub, name)

        async def work():
            for notebook in NOTEBOOKS:
                extra = [WEIGHTS_CHECK] if notebook == NOTEBOOKS[-1] else []
                error = await run_notebook(base, token, f"notebooks/{notebook}", extra)
                if error:
                    return error
            return None

        results[name] = asyncio.run(work())
    except Exception as exc:  # reported by the test
        results[name] = f"{type(exc).__name__}: {exc}"


def give_notebooks(name):
    """What nbgitpuller's link does for each student: their own copy of the notebooks in their home."""
    home = Path(pwd.getpwnam(name).pw_dir)
    target = home / "spam-workbook" / "notebooks"
    target.mkdir(parents=True)
    for notebook in NOTEBOOKS:
        shutil.copy(PROJECT_ROOT / "notebooks" / notebook, target / notebook)
    subprocess.run(["chown", "-R", f"{name}:{name}", str(home / "spam-workbook")], check=True)


def test_three_students_run_notebooks_1_to_3_on_one_hub(hub, students, shared):
    for name in students:  # the workbook, its environment and the shared folder are readable by every student
        check = as_user(name, sys.executable, "-c", "import helpers", cwd="/", timeout=120)
        assert check.returncode == 0, f"{name} cannot import the workbook: {check.stderr[-800:]}"
        give_notebooks(name)
    shared_before, project_data_before = snapshot(shared), snapshot(PROJECT_ROOT / "data")

    sessions = {}
    logins = [threading.Thread(target=lambda n=name: sessions.__setitem__(n, log_in(hub, n))) for name in students]
    for thread in logins:  # all three at the same time
        thread.start()
    for thread in logins:
        thread.join()
    assert sorted(sessions) == sorted(students)
    for name in students:
        wait_for_server(hub, name)

    results = {}
    workers = [threading.Thread(target=student_work, args=(hub, name, results)) for name in students]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert results == {name: None for name in students}, "\n".join(f"{k}: {v}" for k, v in results.items() if v)

    for name in students:  # each student's files are theirs alone
        data = Path(pwd.getpwnam(name).pw_dir) / "workbook-data"
        files = [p for p in data.rglob("*") if p.is_file()]
        assert {"train.csv", "validation.csv", "test.csv"} <= {p.name for p in files}, name
        uid = pwd.getpwnam(name).pw_uid
        assert all(p.stat().st_uid == uid for p in files), name
        others = [other for other in students if other != name]
        peek = as_user(others[0], "ls", str(data), timeout=30)
        assert peek.returncode != 0, f"{others[0]} can read {name}'s data folder"
    # the shared folder and the project's own data folder were only read, and students cannot write to it
    assert as_user(students[0], "touch", str(shared / "gpt2" / "mine"), timeout=30).returncode != 0
    assert snapshot(shared) == shared_before
    assert snapshot(PROJECT_ROOT / "data") == project_data_before
