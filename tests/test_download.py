"""Checked downloads against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from esrgan_lit.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    UnverifiedArchiveError,
    fetch,
    fetch_all,
    load_archive_specs,
)

# ---------------------------------------------------------------------------------------------
# A tiny server with Range support and a "cut the first transfer" switch


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    cut_once: ClassVar[set[str]] = set()
    requests: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        type(self).requests.append((self.path, rng))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.path in self.cut_once:
            self.cut_once.discard(self.path)
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # drop the connection mid-body
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _Handler.files = {}
    _Handler.cut_once = set()
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, _Handler
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------------------------
# Archive builders


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_bytes(
    members: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (target, kind) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def _spec(base: str, path: str, data: bytes, **kw: object) -> dict:
    spec = {
        "name": kw.pop("name", "demo"),
        "urls": [base + path],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "extract_to": "demo",
        "provides": ["set/HR"],
    }
    spec.update(kw)
    return spec


GOOD = {"set/HR/a.png": b"A" * 3000, "set/HR/b.png": b"B" * 5000, "set/README": b"hello"}


# ---------------------------------------------------------------------------------------------
# Tests


def test_good_zip_downloads_verifies_extracts_and_is_idempotent(server, tmp_path: Path) -> None:
    base, h = server
    data = _zip_bytes(GOOD)
    h.files["/good.zip"] = data
    target = fetch(_spec(base, "/good.zip", data), tmp_path, progress=False)
    assert target == (tmp_path / "demo").resolve()
    assert (target / "set/HR/a.png").read_bytes() == GOOD["set/HR/a.png"]
    assert (target / "set/README").read_bytes() == b"hello"
    assert (tmp_path / "downloads/good.zip").read_bytes() == data
    assert not list((tmp_path / "downloads").glob("*.part"))
    assert not list(target.glob(".*.extracting"))
    n = len(h.requests)
    fetch(_spec(base, "/good.zip", data), tmp_path, progress=False)  # already there: no request
    assert len(h.requests) == n


def test_tar_with_mirror_fallback(server, tmp_path: Path) -> None:
    base, h = server
    data = _tar_bytes(GOOD)
    h.files["/mirror/good.tar"] = data
    spec = _spec(base, "/missing/good.tar", data)
    spec["urls"] = [base + "/missing/good.tar", base + "/mirror/good.tar"]
    target = fetch(spec, tmp_path, progress=False)
    assert (target / "set/HR/b.png").read_bytes() == GOOD["set/HR/b.png"]
    assert [p for p, _ in h.requests] == ["/missing/good.tar", "/mirror/good.tar"]


def test_corrupted_archive_is_rejected_and_nothing_is_left(server, tmp_path: Path) -> None:
    base, h = server
    data = _zip_bytes(GOOD)
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF  # same size, different bytes
    h.files["/bad.zip"] = bytes(corrupted)
    with pytest.raises(ChecksumError, match="sha256"):
        fetch(_spec(base, "/bad.zip", data), tmp_path, progress=False)
    assert not (tmp_path / "downloads/bad.zip").exists()
    assert not list((tmp_path / "downloads").glob("*"))  # no .part to resume bad bytes from
    assert not (tmp_path / "demo").exists()


def test_wrong_size_is_a_checksum_error(server, tmp_path: Path) -> None:
    base, h = server
    data = _zip_bytes(GOOD)
    h.files["/short.zip"] = data[:-10]
    spec = _spec(base, "/short.zip", data, sha256=None, md5=hashlib.md5(data).hexdigest())
    with pytest.raises(ChecksumError, match="expected"):
        fetch(spec, tmp_path, progress=False, retries=0)


def test_interrupted_download_resumes_with_range(server, tmp_path: Path) -> None:
    base, h = server
    data = _zip_bytes({**GOOD, "set/HR/big.png": bytes(range(256)) * 800})
    h.files["/cut.zip"] = data
    h.cut_once.add("/cut.zip")
    spec = _spec(base, "/cut.zip", data)
    with pytest.raises(DownloadError, match="resumes"):
        fetch(spec, tmp_path, progress=False, retries=0)
    part = tmp_path / "downloads/cut.zip.part"
    assert 0 < part.stat().st_size < len(data)
    assert not (tmp_path / "demo").exists()
    have = part.stat().st_size
    target = fetch(spec, tmp_path, progress=False, retries=0)
    assert h.requests[-1] == ("/cut.zip", f"bytes={have}-")
    assert (tmp_path / "downloads/cut.zip").read_bytes() == data
    assert (target / "set/HR/big.png").read_bytes() == bytes(range(256)) * 800


def test_interruption_is_retried_within_one_call(server, tmp_path: Path) -> None:
    base, h = server
    data = _tar_bytes(GOOD)
    h.files["/cut.tar"] = data
    h.cut_once.add("/cut.tar")
    fetch(_spec(base, "/cut.tar", data), tmp_path, progress=False, retries=1)
    assert h.requests[0] == ("/cut.tar", None)
    assert h.requests[1][1] is not None and h.requests[1][1].startswith("bytes=")


@pytest.mark.parametrize(
    "members",
    [
        {"../evil.txt": b"x"},
        {"set/../../evil.txt": b"x"},
        {"/tmp/evil_abs.txt": b"x"},
    ],
)
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_path_traversal_is_refused(server, tmp_path: Path, members, kind: str) -> None:
    base, h = server
    members = {"set/HR/ok.png": b"ok", **members}
    data = _zip_bytes(members) if kind == "zip" else _tar_bytes(members)
    h.files[f"/evil.{kind}"] = data
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError, match=r"escapes|absolute"):
        fetch(_spec(base, f"/evil.{kind}", data), root, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not Path("/tmp/evil_abs.txt").exists()
    assert not (root / "demo/set").exists()  # nothing half-extracted
    assert not list((root / "demo").glob(".*extracting"))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_link_members_are_refused(server, tmp_path: Path, kind: bytes) -> None:
    base, h = server
    data = _tar_bytes({"set/HR/ok.png": b"ok"}, links={"set/HR/passwd": ("/etc/passwd", kind)})
    h.files["/link.tar"] = data
    with pytest.raises(UnsafeArchiveError, match="link"):
        fetch(_spec(base, "/link.tar", data), tmp_path, progress=False)
    assert not (tmp_path / "demo/set").exists()


def test_zip_symlink_member_is_refused(server, tmp_path: Path) -> None:
    base, h = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/HR/ok.png", b"ok")
        info = zipfile.ZipInfo("set/HR/link")
        info.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK
        zf.writestr(info, "/etc/passwd")
    data = buf.getvalue()
    h.files["/link.zip"] = data
    with pytest.raises(UnsafeArchiveError, match="link"):
        fetch(_spec(base, "/link.zip", data), tmp_path, progress=False)
    assert not (tmp_path / "demo/set").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_network_names_where_to_put_files(tmp_path: Path) -> None:
    data = b"whatever"
    spec = _spec(f"http://127.0.0.1:{_closed_port()}", "/DIV2K_x.zip", data)
    with pytest.raises(DownloadError) as err:
        fetch(spec, tmp_path, progress=False, timeout=5)
    msg = str(err.value)
    assert str(tmp_path / "downloads" / "DIV2K_x.zip") in msg
    assert str((tmp_path / "demo" / "set/HR").resolve()) in msg
    assert "DIV2K_x.zip" in msg and not isinstance(err.value, ChecksumError)


def test_archive_placed_by_hand_is_verified_and_used_offline(tmp_path: Path) -> None:
    data = _zip_bytes(GOOD)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads/good.zip").write_bytes(data)
    spec = _spec(f"http://127.0.0.1:{_closed_port()}", "/good.zip", data)
    target = fetch(spec, tmp_path, progress=False)
    assert (target / "set/HR/a.png").exists()


def test_folders_placed_by_hand_skip_the_download(tmp_path: Path) -> None:
    (tmp_path / "demo/set/HR").mkdir(parents=True)
    spec = _spec(f"http://127.0.0.1:{_closed_port()}", "/x.zip", b"x")
    assert fetch(spec, tmp_path, progress=False) == (tmp_path / "demo").resolve()


def test_unverified_archive_refused_unless_allowed(server, tmp_path: Path) -> None:
    base, h = server
    data = _zip_bytes(GOOD)
    h.files["/nosum.zip"] = data
    spec = _spec(base, "/nosum.zip", data, sha256=None, size=None)
    with pytest.raises(UnverifiedArchiveError, match="allow_unverified"):
        fetch(spec, tmp_path, progress=False)
    assert h.requests == []  # refused before any byte was fetched
    target = fetch(spec, tmp_path, progress=False, allow_unverified=True)
    assert (target / "set/HR/a.png").exists()


def test_md5_only_spec_is_checked(server, tmp_path: Path) -> None:
    base, h = server
    data = _tar_bytes(GOOD)
    h.files["/md5.tar"] = data
    spec = _spec(base, "/md5.tar", data, sha256=None, size=None, md5="0" * 32)
    with pytest.raises(ChecksumError, match="md5"):
        fetch(spec, tmp_path, progress=False)
    spec["md5"] = hashlib.md5(data).hexdigest()
    assert (fetch(spec, tmp_path, progress=False) / "set/HR/a.png").exists()


def test_two_archives_share_a_top_folder(server, tmp_path: Path) -> None:
    base, h = server
    a, b = _zip_bytes({"LR/X2/a.png": b"2"}), _zip_bytes({"LR/X4/a.png": b"4"})
    h.files["/a.zip"], h.files["/b.zip"] = a, b
    specs = [
        _spec(base, "/a.zip", a, name="x2", provides=["LR/X2"]),
        _spec(base, "/b.zip", b, name="x4", provides=["LR/X4"]),
    ]
    fetch_all(specs, tmp_path, progress=False)
    assert (tmp_path / "demo/LR/X2/a.png").read_bytes() == b"2"
    assert (tmp_path / "demo/LR/X4/a.png").read_bytes() == b"4"


def test_fetch_all_skips_optional_manual_sets_with_a_warning(tmp_path: Path) -> None:
    spec = {"name": "manga", "urls": [], "filename": "M.zip", "extract_to": "M", "optional": True}
    with pytest.warns(UserWarning, match="M.zip"):
        assert fetch_all([spec], tmp_path, progress=False) == []
    spec["optional"] = False
    with pytest.raises(DownloadError, match="cannot be downloaded automatically"):
        fetch_all([spec], tmp_path, progress=False)


def test_recorded_archive_lists() -> None:
    div2k = {s.name: s for s in load_archive_specs("div2k")}
    assert set(div2k) == {
        "div2k_train_hr",
        "div2k_train_lr_bicubic_x4",
        "div2k_valid_hr",
        "div2k_valid_lr_bicubic_x4",
    }
    train = div2k["div2k_train_hr"]
    assert train.urls[0] == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"
    assert train.size == 3530603713 and train.filename == "DIV2K_train_HR.zip"
    for spec in div2k.values():
        assert spec.verified and spec.sha256 and len(spec.sha256) == 64
    for name in ("flickr2k", "benchmarks", "ost"):
        for spec in load_archive_specs(name):
            assert spec.verified or not spec.urls, spec.name  # no unverifiable download
            assert spec.provides, spec.name


def test_fetch_all_takes_list_names_and_skips_what_is_in_place(tmp_path: Path) -> None:
    # Folders laid out as the recorded archives extract: nothing is fetched (no network here).
    for rel in ("DIV2K/DIV2K_train_HR", "DIV2K/DIV2K_train_LR_bicubic/X4", "DIV2K/DIV2K_valid_HR",
                "DIV2K/DIV2K_valid_LR_bicubic/X4", "Flickr2K/Flickr2K_HR"):  # fmt: skip
        (tmp_path / rel).mkdir(parents=True)
    done = fetch_all(["div2k", "flickr2k"], tmp_path, progress=False)
    assert done == [(tmp_path / "DIV2K").resolve()] * 4 + [tmp_path.resolve()]
