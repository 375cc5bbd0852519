"""M3ViT checkpoints: sharded and single-file round trips, heads handling, every error message."""
import re

import numpy as np
import pytest
import torch

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.checkpoint import load_checkpoint, load_model, read_checkpoint, save_checkpoint
from edgemoe.golden.model import build_model
from edgemoe.spec import get_preset

MICRO = get_preset("micro")




@pytest.fixture(scope="module")
def source():
    return build_model(MICRO, seed=1)


def same_state(a, b, prefix=""):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(prefix))


@pytest.mark.parametrize("ranks", [2, 4])
def test_sharded_round_trip(tmp_path, source, ranks):
    save_checkpoint(source, tmp_path, ranks=ranks)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{r}.pth" for r in range(ranks)]
    e = MICRO.num_experts // ranks
    for r in range(ranks):
        f = torch.load(tmp_path / f"{r}.pth", weights_only=True)
        assert "epoch" in f and "state_dict" in f
        sd = f["state_dict"]
        assert sd["backbone.blocks.1.mlp.experts.htoh4.weight"].shape[0] == e
        if r > 0:  # other ranks: their experts only
            assert all(".mlp.experts." in k for k in sd)
        else:
            assert "backbone.pos_embed" in sd and "heads.0.conv_4.weight" in sd
    # rank order matters: rank 1's experts follow rank 0's
    w = source.state_dict()["backbone.blocks.3.mlp.experts.h4toh.weight"]
    assert torch.equal(torch.load(tmp_path / "1.pth", weights_only=True)["state_dict"]
                       ["backbone.blocks.3.mlp.experts.h4toh.weight"], w[e:2 * e])
    target = build_model(MICRO, seed=2)
    assert not same_state(source, target, "backbone.")
    assert load_checkpoint(target, tmp_path) == []
    assert same_state(source, target)


@pytest.mark.parametrize("wrap", ["raw", "state_dict", "model", "module"])
def test_single_file(tmp_path, source, wrap):
    sd = source.state_dict()
    obj = {"raw": sd, "state_dict": {"state_dict": sd, "epoch": 3}, "model": {"model": sd},
           "module": {"state_dict": {"module." + k: v for k, v in sd.items()}}}[wrap]
    torch.save(obj, tmp_path / "m.pth")
    target = build_model(MICRO, seed=2)
    assert load_checkpoint(target, tmp_path / "m.pth") == []
    assert same_state(source, target)


def test_no_heads_keeps_random_heads_with_warning(tmp_path, source):
    sd = {k: v for k, v in source.state_dict().items() if k.startswith("backbone.")}
    sd["tam_model0.layers0.0.weight"] = torch.zeros(2)
    torch.save({"state_dict": sd}, tmp_path / "enc.pth")
    target, fresh = build_model(MICRO, seed=2), build_model(MICRO, seed=2)
    warns = load_checkpoint(target, tmp_path / "enc.pth")
    assert len(warns) == 2
    assert "no task heads" in warns[0] and "random" in warns[0]
    assert "ignored 1 keys" in warns[1] and "tam_model0.layers0.0.weight" in warns[1]
    assert same_state(source, target, "backbone.") and same_state(fresh, target, "heads.")


def test_m3vit_decoder_names_load_as_heads(tmp_path, source):
    sd = {}
    for k, v in source.state_dict().items():
        for i, t in enumerate(MICRO.tasks):
            if k.startswith(f"heads.{i}."):
                k = f"decoders.{t.name}." + k[len(f"heads.{i}."):]
        if not k.endswith("num_batches_tracked"):
            sd[k] = v
    torch.save({"state_dict": sd}, tmp_path / "m3vit.pth")
    target = build_model(MICRO, seed=2)
    assert load_checkpoint(target, tmp_path / "m3vit.pth") == []
    assert same_state(source, target, "heads.0.conv") and same_state(source, target, "heads.1.syncbn")


def _save(tmp_path, sd):
    torch.save({"state_dict": sd}, tmp_path / "x.pth")
    return tmp_path / "x.pth"


def test_missing_keys_message(tmp_path, source):
    sd = dict(source.state_dict())
    del sd["backbone.blocks.2.norm1.bias"]
    with pytest.raises(EdgeMoeError) as e:
        load_checkpoint(build_model(MICRO), _save(tmp_path, sd))
    assert str(e.value) == f"{tmp_path / 'x.pth'}: 1 missing keys: backbone.blocks.2.norm1.bias"
    sd = {k: v for k, v in sd.items() if not k.startswith("backbone.blocks.")}
    with pytest.raises(EdgeMoeError) as e:
        load_checkpoint(build_model(MICRO), _save(tmp_path, sd))
    msg = str(e.value)
    n = sum(k.startswith("backbone.blocks.") for k in source.state_dict())
    assert f"{n} missing keys" in msg and f"(+{n - 8} more)" in msg and "\n" not in msg
    assert msg.count("backbone.blocks.") == 8


def test_unexpected_key_message(tmp_path, source):
    sd = dict(source.state_dict())
    sd["backbone.norm.weight"] = torch.ones(MICRO.embed)  # a final norm M3ViT does not use
    with pytest.raises(EdgeMoeError, match=r"x\.pth: 1 unexpected keys: backbone\.norm\.weight$"):
        load_checkpoint(build_model(MICRO), _save(tmp_path, sd))


def test_wrong_shape_message(tmp_path, source):
    sd = dict(source.state_dict())
    sd["backbone.blocks.0.attn.qkv.weight"] = torch.zeros(96, 16)
    with pytest.raises(EdgeMoeError) as e:
        load_checkpoint(build_model(MICRO), _save(tmp_path, sd))
    assert str(e.value).endswith("backbone.blocks.0.attn.qkv.weight: expected (96, 32), found (96, 16)")


def test_missing_rank_file_shows_as_expert_shape(tmp_path, source):
    save_checkpoint(source, tmp_path, ranks=4)
    (tmp_path / "3.pth").unlink()
    shape_msg = r"mlp\.experts\.\w+\.weight: expected \(4, \d+, \d+\), found \(3, "
    with pytest.raises(EdgeMoeError, match=shape_msg):
        load_checkpoint(build_model(MICRO), tmp_path)
    (tmp_path / "1.pth").unlink()
    with pytest.raises(EdgeMoeError, match=r"rank files 1\.pth missing"):
        read_checkpoint(tmp_path)


def test_not_found_and_not_a_checkpoint(tmp_path):
    with pytest.raises(EdgeMoeError, match=r"^checkpoint .*nope\.pth not found$"):
        load_checkpoint(build_model(MICRO), tmp_path / "nope.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(EdgeMoeError, match=r"text\.pth: not a PyTorch checkpoint \("):
        load_checkpoint(build_model(MICRO), tmp_path / "text.pth")
    torch.save({"epoch": 1, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(EdgeMoeError, match=r"meta\.pth: not a checkpoint \(no state_dict"):
        load_checkpoint(build_model(MICRO), tmp_path / "meta.pth")
    torch.save({"state_dict": {"decoder.w": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(EdgeMoeError, match=r"no backbone\.\* keys"):
        load_checkpoint(build_model(MICRO), tmp_path / "other.pth")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgeMoeError, match=r"holds no \{rank\}\.pth files") as e:
        load_checkpoint(build_model(MICRO), empty)
    assert "\n" not in str(e.value)


def test_save_checkpoint_uneven_ranks(tmp_path, source):
    with pytest.raises(EdgeMoeError, match="4 experts cannot be split evenly over 3 ranks"):
        save_checkpoint(source, tmp_path, ranks=3)


def test_load_model(tmp_path, source, capsys):
    save_checkpoint(source, tmp_path / "ck", ranks=2)
    m = load_model("micro", checkpoint=tmp_path / "ck", seed=5)
    assert same_state(source, m)
    sd = {k: v for k, v in source.state_dict().items() if k.startswith("backbone.")}
    torch.save(sd, tmp_path / "enc.pth")
    m = load_model("micro", checkpoint=tmp_path / "enc.pth", seed=5)
    assert re.search(r"warning: .*no task heads", capsys.readouterr().err)
    assert same_state(build_model(MICRO, seed=5), m, "heads.")
    assert same_state(build_model(MICRO, seed=3), load_model("micro", seed=3))
    with pytest.raises(EdgeMoeError, match="either a checkpoint or an ONNX file"):
        load_model("micro", checkpoint=tmp_path / "ck", onnx=tmp_path / "m.onnx")
    with pytest.raises(EdgeMoeError, match="unknown preset 'nano'"):
        load_model("nano")
    img = np.zeros((1, *MICRO.input_shape), np.float32)
    with torch.no_grad():
        assert torch.equal(m.encode(torch.from_numpy(img), 0), source.encode(torch.from_numpy(img), 0))
