"""ONNX export/import of the encoder: metadata, round trip, the graph itself, rejection of foreign ops."""
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.checkpoint import load_model
from edgemoe.golden.model import build_model, run_golden, sample_image
from edgemoe.golden.onnx_io import SPEC_KEY, export_onnx, import_onnx
from edgemoe.spec import ModelSpec, get_preset

MICRO = get_preset("micro")




@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_model(MICRO, seed=4)
    path = tmp_path_factory.mktemp("onnx") / "micro.onnx"
    export_onnx(model, path)
    return model, path


def test_metadata_names_and_io(exported):
    model, path = exported
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert ModelSpec.from_dict(json.loads(meta[SPEC_KEY])) == MICRO
    inits = {i.name for i in proto.graph.initializer}
    assert {k for k in model.state_dict() if k.startswith("backbone.")} <= inits
    assert [i.name for i in proto.graph.input] == ["image", "task"]
    assert [o.name for o in proto.graph.output] == ["tokens"]
    dims = [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, MICRO.tokens, MICRO.embed]
    assert proto.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    onnx.checker.check_model(proto)


@pytest.mark.parametrize("task", [0, 1])
def test_round_trip_equal_outputs(exported, task):
    model, path = exported
    back = import_onnx(path)
    image = sample_image(MICRO, seed=3)
    assert np.abs(run_golden(back, image, task) - run_golden(model, image, task)).max() < 1e-5


def test_graph_computes_the_encoder_for_each_task(exported):
    """Run the exported graph itself (onnx's reference runtime): the task input picks the gate."""
    model, path = exported
    image = sample_image(MICRO, seed=5)
    sess = ReferenceEvaluator(str(path))
    outs = []
    for task in (0, 1):
        (y,) = sess.run(None, {"image": image[None], "task": np.array([task], np.int64)})
        assert np.abs(y[0] - run_golden(model, image, task)).max() < 1e-5
        outs.append(y)
    assert np.abs(outs[0] - outs[1]).max() > 1e-3


def test_unsupported_operator_rejected(exported, tmp_path):
    _, path = exported
    proto = onnx.load(str(path))
    out = proto.graph.output[0].name
    proto.graph.node[-1].output[0] = "pre_celu"
    proto.graph.node.append(helper.make_node("Celu", ["pre_celu"], [out], name="injected_celu"))
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(EdgeMoeError) as e:
        import_onnx(bad)
    assert str(e.value) == f"{bad}: unsupported ONNX operator Celu at node 'injected_celu'"


def test_not_onnx_or_not_ours(tmp_path, exported):
    with pytest.raises(EdgeMoeError, match=r"ONNX file .*missing\.onnx not found"):
        import_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf at all" * 10)
    with pytest.raises(EdgeMoeError, match=r"junk\.onnx: not an ONNX model") as e:
        import_onnx(junk)
    assert "\n" not in str(e.value)
    proto = onnx.load(str(exported[1]))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    with pytest.raises(EdgeMoeError, match=r"plain\.onnx: ONNX model has no edgemoe\.spec metadata"):
        import_onnx(plain)


def test_missing_initializer_rejected(tmp_path, exported):
    proto = onnx.load(str(exported[1]))
    keep = [i for i in proto.graph.initializer if i.name != "backbone.blocks.1.mlp.gate.1.w_gate"]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
    cut = tmp_path / "cut.onnx"
    onnx.save(proto, str(cut))
    with pytest.raises(EdgeMoeError, match=r"1 missing keys: backbone\.blocks\.1\.mlp\.gate\.1\.w_gate"):
        import_onnx(cut)


def test_load_model_from_onnx(exported):
    model, path = exported
    back = load_model("m3vit-tiny-edge", onnx=path)  # the spec comes from the file, not the preset
    assert back.spec == MICRO
    sd, sb = model.state_dict(), back.state_dict()
    assert all(torch.equal(sd[k], sb[k]) for k in sd if k.startswith("backbone."))
