# ruff: noqa: F811  (pytest fixtures imported from test_download are used as arguments)
"""`esrgan_lit.hub`: official models by name, served from a local 127.0.0.1 server (no internet)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import torch

from esrgan_lit import hub
from esrgan_lit.archs import RRDBNet
from esrgan_lit.weights import load_generator, save_generator
from test_download import _Handler, server  # noqa: F401  (the shared 127.0.0.1 server fixture)


def _tiny_pth(path: Path) -> tuple[RRDBNet, bytes]:
    torch.manual_seed(0)
    net = RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=8).eval()
    save_generator(net, path)
    return net, path.read_bytes()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """torch.hub.get_dir() -> a fresh folder, so nothing touches the user's real cache."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def _entry(monkeypatch, name: str, **kw) -> hub.HubModel:
    model = hub.HubModel(**{**hub.MODELS[name].__dict__, **kw})
    monkeypatch.setitem(hub.MODELS, name, model)
    return model


def test_table_lists_the_official_models_with_checksums() -> None:
    names = set(hub.MODELS)
    assert {"RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x2plus"} <= names
    assert "ESRGAN_SRx4_DF2KOST_official" in names
    for m in hub.MODELS.values():
        assert m.sha256 or m.sha256_prefix, m.name  # every entry is verifiable
        assert m.url is None or m.url.startswith("https://github.com/"), m.name
    assert hub.MODELS["ESRGAN_SRx4_DF2KOST_official"].sha256_prefix == "ff704c30"
    assert hub.cache_path("realesrgan_x4plus").name == "RealESRGAN_x4plus.pth"  # any case


def test_name_downloads_once_verifies_and_loads(server, cache, tmp_path, monkeypatch) -> None:
    net, data = _tiny_pth(tmp_path / "tiny.pth")
    _Handler.files["/x2.pth"] = data
    _entry(monkeypatch, "RealESRGAN_x2plus", url=f"{server[0]}/x2.pth",
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))  # fmt: skip
    loaded = load_generator("RealESRGAN_x2plus")
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert (cache / "RealESRGAN_x2plus.pth").read_bytes() == data
    assert not list(cache.glob("*.part"))
    n = len(_Handler.requests)
    load_generator("RealESRGAN_x2plus")  # cached: no second request
    assert len(_Handler.requests) == n


def test_hash_prefix_in_the_file_name_is_checked(server, cache, tmp_path, monkeypatch) -> None:
    _, data = _tiny_pth(tmp_path / "tiny.pth")
    prefix = hashlib.sha256(data).hexdigest()[:8]
    _Handler.files["/good.pth"] = data
    _entry(monkeypatch, "ESRGAN_SRx4_DF2KOST_official", url=f"{server[0]}/good.pth",
           filename=f"tiny-{prefix}.pth")  # fmt: skip
    assert hub.download("ESRGAN_SRx4_DF2KOST_official", progress=False).is_file()
    bad = "0" * 8 if prefix != "0" * 8 else "1" * 8
    _entry(monkeypatch, "ESRGAN_SRx4_DF2KOST_official", url=f"{server[0]}/good.pth",
           filename=f"tiny-{bad}.pth")  # fmt: skip
    with pytest.raises(hub.ChecksumError, match=bad):
        hub.download("ESRGAN_SRx4_DF2KOST_official", progress=False)
    assert not (cache / f"tiny-{bad}.pth").exists()
    assert not (cache / f"tiny-{bad}.pth.part").exists()


def test_bad_checksum_is_refused_and_the_partial_file_removed(
    server, cache, tmp_path, monkeypatch
) -> None:
    _, data = _tiny_pth(tmp_path / "tiny.pth")
    _Handler.files["/x4.pth"] = data
    _entry(monkeypatch, "RealESRGAN_x4plus", url=f"{server[0]}/x4.pth", sha256="ab" * 32, size=None)
    with pytest.raises(hub.ChecksumError) as err:
        load_generator("RealESRGAN_x4plus")
    assert "deleted" in str(err.value) and str(cache / "RealESRGAN_x4plus.pth") in str(err.value)
    assert not any(cache.iterdir())  # neither the file nor its .part is left


def test_corrupted_cached_file_is_refused(cache, monkeypatch) -> None:
    cache.mkdir(parents=True)
    (cache / "RealESRGAN_x4plus.pth").write_bytes(b"not the release")
    with pytest.raises(hub.ChecksumError, match="delete it"):
        load_generator("RealESRGAN_x4plus")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_network_the_error_says_where_to_put_the_file(cache, tmp_path, monkeypatch) -> None:
    _entry(monkeypatch, "RealESRNet_x4plus", url=f"http://127.0.0.1:{_closed_port()}/x.pth")
    with pytest.raises(hub.DownloadError) as err:
        hub.download("RealESRNet_x4plus", progress=False, retries=0, timeout=2)
    assert str(cache / "RealESRNet_x4plus.pth") in str(err.value)
    # ... and a verified copy placed there by hand is then used, offline
    _, data = _tiny_pth(tmp_path / "tiny.pth")
    _entry(monkeypatch, "RealESRNet_x4plus", url=f"http://127.0.0.1:{_closed_port()}/x.pth",
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))  # fmt: skip
    (cache / "RealESRNet_x4plus.pth").write_bytes(data)
    assert load_generator("RealESRNet_x4plus").scale == 2


def test_model_without_a_direct_address_names_the_path(cache) -> None:
    with pytest.raises(hub.DownloadError) as err:
        load_generator("ESRGAN_PSNR_SRx4_DF2K_official")
    msg = str(err.value)
    assert "cannot be downloaded automatically" in msg
    assert str(cache / "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth") in msg


def test_paths_and_unknown_names_are_not_hub_names(tmp_path) -> None:
    assert not hub.is_name("no_such_model")
    assert (
        hub.resolve("no_such_model") == "no_such_model"
    )  # load_generator then says "no such file"
    local = tmp_path / "RealESRGAN_x4plus"
    local.write_bytes(b"x")
    assert hub.resolve(str(local)) == str(local)  # an existing file wins over the name


def test_hub_cli_lists_and_downloads(server, cache, tmp_path, monkeypatch, capsys) -> None:
    _, data = _tiny_pth(tmp_path / "tiny.pth")
    _Handler.files["/n.pth"] = data
    _entry(monkeypatch, "RealESRNet_x4plus", url=f"{server[0]}/n.pth",
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))  # fmt: skip
    assert hub.main(["download", "RealESRNet_x4plus"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(cache / "RealESRNet_x4plus.pth")
    assert hub.main(["list"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(hub.MODELS) and "cached" in lines["RealESRNet_x4plus"]
    assert "place by hand" in lines["ESRGAN_PSNR_SRx4_DF2K_official"]
    assert hub.main(["download", "ESRGAN_PSNR_SRx4_DF2K_official"]) == 1
    assert "cannot be downloaded automatically" in capsys.readouterr().err


def test_evaluate_takes_a_model_name(server, cache, tmp_path, monkeypatch) -> None:
    from esrgan_lit.evaluate import load_method

    _, data = _tiny_pth(tmp_path / "tiny.pth")
    _Handler.files["/e.pth"] = data
    _entry(monkeypatch, "RealESRGAN_x2plus", url=f"{server[0]}/e.pth",
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))  # fmt: skip
    net, label = load_method("realesrgan_x2plus", "cpu")
    assert label == "RealESRGAN_x2plus" and net.scale == 2
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        load_method("no_such_model", "cpu")


def test_public_name_re_exports_the_weights_layer_table() -> None:
    # esrgan_lit.hub is the public name and the command; the table and download live in the
    # weights layer so load_generator resolves names without importing upward.
    from esrgan_lit.weights import hub as low

    assert hub.MODELS is low.MODELS and hub.download is low.download and callable(hub.main)
