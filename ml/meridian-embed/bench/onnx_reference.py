"""The reference runtime for `cargo xtask bench embed`: the same all-MiniLM-L6-v2 weights run by
ONNX Runtime on the CPU.

PyPI has no CPU-only PyTorch (its torch wheel pulls the CUDA stack), so the reference is ONNX
Runtime, and the model's ONNX graph is written here from `model.safetensors` with the `onnx`
package: BERT's embeddings, six encoder layers (attention, GELU feed-forward, post-layer
normalisation) and the last hidden state. Tokenisation uses the same `tokenizer.json` through
Hugging Face's `tokenizers`; mean pooling and L2 normalisation follow, as in
sentence-transformers.

Usage: python onnx_reference.py MODEL_DIR TEXTS_FILE BATCH SECONDS THREADS OUT_JSON

Prints nothing on success; writes {"embeddings_per_s", "batches", "texts", "vectors"} (the
vectors of the first batch, to check the two runtimes agree) to OUT_JSON.
"""

import json
import struct
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

HIDDEN = 384
HEADS = 12
LAYERS = 6


def load_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors


def build_graph(weights, epsilon):
    nodes, initializers = [], []

    def constant(name, array):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, output, **attributes):
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def linear(x, prefix, out):
        w = constant(prefix + ".weight.T", weights[prefix + ".weight"].T)
        b = constant(prefix + ".bias", weights[prefix + ".bias"])
        return node("Add", [node("MatMul", [x, w], out + ".mm"), b], out)

    def layer_norm(x, prefix, out):
        gamma = constant(prefix + ".weight", weights[prefix + ".weight"])
        beta = constant(prefix + ".bias", weights[prefix + ".bias"])
        return node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=epsilon)

    split_heads = constant("split_heads", np.array([0, 0, HEADS, HIDDEN // HEADS], np.int64))
    join_heads = constant("join_heads", np.array([0, 0, HIDDEN], np.int64))
    scale = constant("scale", np.array(1.0 / np.sqrt(HIDDEN // HEADS), np.float32))

    words = node("Gather", [constant("word", weights["embeddings.word_embeddings.weight"]), "input_ids"], "e.words")
    positions = node("Gather", [constant("position", weights["embeddings.position_embeddings.weight"]), "position_ids"], "e.positions")
    types = node("Gather", [constant("type", weights["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "e.types")
    x = node("Add", [node("Add", [words, positions], "e.sum1"), types], "e.sum")
    x = layer_norm(x, "embeddings.LayerNorm", "e.out")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def heads(name, perm):
            projected = linear(x, f"{p}.attention.self.{name}", f"{p}.{name}")
            reshaped = node("Reshape", [projected, split_heads], f"{p}.{name}.heads")
            return node("Transpose", [reshaped], f"{p}.{name}.t", perm=perm)

        q = heads("query", [0, 2, 1, 3])
        k = heads("key", [0, 2, 3, 1])
        v = heads("value", [0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.scaled")
        scores = node("Add", [scores, "mask_bias"], f"{p}.masked")
        probs = node("Softmax", [scores], f"{p}.probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"{p}.ctx")], f"{p}.ctx.t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, join_heads], f"{p}.ctx.joined")
        attention = linear(context, f"{p}.attention.output.dense", f"{p}.attn")
        x = layer_norm(node("Add", [attention, x], f"{p}.attn.res"), f"{p}.attention.output.LayerNorm", f"{p}.attn.out")
        inner = node("Gelu", [linear(x, f"{p}.intermediate.dense", f"{p}.inter")], f"{p}.gelu")
        out = linear(inner, f"{p}.output.dense", f"{p}.out")
        x = layer_norm(node("Add", [out, x], f"{p}.out.res"), f"{p}.output.LayerNorm", f"{p}.out.ln")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))

    ints = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [ints("input_ids"), ints("token_type_ids"), ints("position_ids"),
         helper.make_tensor_value_info("mask_bias", TensorProto.FLOAT, ["batch", 1, 1, "tokens"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def main():
    model_dir, texts_file, batch, seconds, threads, out_json = sys.argv[1:7]
    batch, seconds, threads = int(batch), float(seconds), int(threads)
    config = json.load(open(f"{model_dir}/config.json"))
    weights = load_safetensors(f"{model_dir}/model.safetensors")
    model = build_graph(weights, config["layer_norm_eps"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
    tokenizer.enable_truncation(256)
    texts = [line.rstrip("\n") for line in open(texts_file, encoding="utf-8") if line.strip()]

    def embed(chunk):
        encodings = tokenizer.encode_batch(chunk)
        ids = np.array([e.ids for e in encodings], np.int64)
        types = np.array([e.type_ids for e in encodings], np.int64)
        mask = np.array([e.attention_mask for e in encodings], np.float32)
        positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        (hidden,) = session.run(None, {"input_ids": ids, "token_type_ids": types,
                                       "position_ids": np.ascontiguousarray(positions), "mask_bias": bias})
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        mean = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

    first = embed(texts[:batch])
    embed(texts[:batch])  # warm-up
    done, batches, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = (batches * batch) % max(len(texts) - batch, 1)
        embed(texts[start:start + batch])
        done += batch
        batches += 1
    elapsed = time.perf_counter() - started
    json.dump({"embeddings_per_s": done / elapsed, "batches": batches, "texts": done,
               "vectors": first.tolist()}, open(out_json, "w"))


if __name__ == "__main__":
    main()
