"""leap's preference training against PyTorch + PEFT (and TRL's DPO trainer for speed).

check: for every step leap recorded (`TrainConfig::gradients`: the weights each step started
from, its gradients, its window, loss and reference log-probabilities), loads those weights into
the same model in PyTorch (F32, LoRA through PEFT), computes the same loss on the same pairs
(each response after its prompt, alone) and compares the loss and every LoRA gradient. Prints one
JSON object.

speed: times TRL's `DPOTrainer` with PEFT LoRA on pairs of the given lengths, one pair a step,
and prints one JSON object like `peft_peer.py`.

Run by `benches/dpo.rs` (`just bench`) from the virtual environment the recipe makes.
"""

import argparse
import glob
import json
import os
import resource
import time

# leap's targets and the projections of a Llama layer in transformers.
MODULES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def load(gguf_path, rank, alpha):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder, name = os.path.split(os.path.abspath(gguf_path))
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, torch_dtype=torch.float32
    )
    model.config.use_cache = False
    lora = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(set(m.split(".")[1] for m in MODULES.values())),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def unpermute(rows, n_head):
    """GGUF stores Q and K rows permuted for llama.cpp's rope; transformers undoes it on load
    (its reverse_permute_weights): the same for the rows of a LoRA B."""
    dim = rows.shape[0] // n_head // 2
    w = rows.reshape(n_head, dim, 2, *rows.shape[1:])
    return w.swapaxes(2, 1).reshape(rows.shape)


def adapter_tensors(path, config):
    """leap's adapter file as {(layer, module, 'A'|'B'): array in PyTorch's layout}."""
    import numpy as np
    from gguf import GGUFReader

    out = {}
    for t in GGUFReader(path).tensors:
        name = t.name  # blk.N.attn_q.weight.lora_a
        parts = name.split(".")
        layer, module, which = int(parts[1]), parts[2], parts[-1]
        data = np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        if which == "lora_b" and module in ("attn_q", "attn_k"):
            heads = (
                config.num_attention_heads
                if module == "attn_q"
                else config.num_key_value_heads
            )
            data = unpermute(data, heads)
        out[(layer, module, "A" if which == "lora_a" else "B")] = data
    return out


def lora_params(model):
    """{(layer, module, 'A'|'B'): parameter} of the PEFT model."""
    out = {}
    for layer, block in enumerate(model.base_model.model.model.layers):
        for module, path in MODULES.items():
            m = block
            for part in path.split("."):
                m = getattr(m, part)
            out[(layer, module, "A")] = m.lora_A["default"].weight
            out[(layer, module, "B")] = m.lora_B["default"].weight
    return out


def pair_loss(objective, policy, reference, tokens):
    """The loss leap's `preference::pair_loss` computes, in PyTorch."""
    import torch
    import torch.nn.functional as F

    beta = objective["beta"]
    kind = objective["loss"]
    n = len(policy)
    pairs = n // 2
    loss = torch.zeros((), dtype=torch.float64)
    for c in range(0, n, 2):
        r = c + 1
        per = (lambda k: 1.0 / tokens[k]) if kind == "ipo" else (lambda k: 1.0)
        h = (policy[c] - reference[c]) * per(c) - (policy[r] - reference[r]) * per(r)
        if kind == "ipo":
            loss = loss + (h - 1.0 / (2.0 * beta)) ** 2 / pairs
        else:
            loss = loss - F.logsigmoid(beta * h) / pairs
    w = objective.get("sft_weight", 0.0)
    if w > 0:
        chosen = sum(tokens[c] for c in range(0, n, 2))
        loss = loss - w * sum(policy[c] for c in range(0, n, 2)) / chosen
    return loss


def check(args):
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    model = load(args.gguf, args.rank, args.alpha)
    params = lora_params(model)
    results = []
    for record_path in sorted(glob.glob(os.path.join(args.dir, "step-*.json")), key=lambda p: int(p.split("-")[-1].split(".")[0])):
        record = json.load(open(record_path))
        step = record["step"]
        weights = adapter_tensors(os.path.join(args.dir, f"step-{step}.weights.gguf"), model.config)
        grads = adapter_tensors(os.path.join(args.dir, f"step-{step}.gguf"), model.config)
        with torch.no_grad():
            for key, p in params.items():
                p.copy_(torch.from_numpy(weights[key]))
                p.grad = None
        tokens = record["tokens"]
        spans = record["spans"]
        policy = []
        for (a, b), (s, e) in zip(record["documents"], spans):
            ids = torch.tensor([tokens[a:b]])
            logits = model(input_ids=ids).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            rows = torch.arange(s - a, e - a)
            labels = torch.tensor(tokens[s + 1 : e + 1])
            policy.append(logp[rows, labels].sum())
        lengths = [e - s for s, e in spans]
        loss = pair_loss(record["objective"], policy, record["references"], lengths)
        loss.backward()
        # Every gradient: the largest difference over the largest value, and the cosine.
        ours = np.concatenate([grads[k].ravel() for k in sorted(params)])
        theirs = np.concatenate([params[k].grad.numpy().ravel() for k in sorted(params)])
        diff = np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30)
        cos = float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)))
        norm = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
        # The reference log-probabilities leap stored are its policy's at step 1: compare.
        ref_diff = (
            max(abs(float(p) - r) for p, r in zip(policy, record["references"]))
            if step == 1
            else None
        )
        results.append(
            {
                "step": step,
                "pairs": len(spans) // 2,
                "loss_leap": record["loss"],
                "loss_torch": float(loss),
                "grad_max_rel_diff": float(diff),
                "grad_rel_l2": norm,
                "grad_cosine": cos,
                "reference_max_abs_diff": ref_diff,
            }
        )
    print(json.dumps({"steps": results}))


def speed(args):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder, name = os.path.split(os.path.abspath(args.gguf))
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, torch_dtype=torch.float32
    )
    # The weights are dequantised to F32 on load; the trainer refuses a model still marked as
    # GGUF-quantised.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    pairs = [json.loads(line) for line in open(args.pairs)]
    data = Dataset.from_list(
        [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    )
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=0.0,
        target_modules=list(set(m.split(".")[1] for m in MODULES.values())),
        bias="none",
        task_type="CAUSAL_LM",
    )
    times = []
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.t = time.perf_counter()

        def on_step_end(self, *_, **__):
            times.append(time.perf_counter() - self.t)

    config = DPOConfig(
        output_dir=args.out,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        num_train_epochs=1,
        max_steps=len(pairs),
        learning_rate=1e-5,
        beta=0.01,
        max_length=args.max_length,
        # Like leap: the reference's log-probabilities once before training, and no
        # recomputation of activations in the backward pass.
        precompute_ref_log_probs=True,
        gradient_checkpointing=False,
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        bf16=args.bf16,
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[Clock()],
    )
    trainer.train()
    steady = sorted(times[args.warmup :])
    step_s = steady[len(steady) // 2]
    print(
        json.dumps(
            {
                "step_s": step_s,
                "tokens_per_s": args.tokens_per_pair / step_s,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["check", "speed"])
    p.add_argument("--gguf", required=True)
    p.add_argument("--dir", help="check: the steps leap recorded")
    p.add_argument("--pairs", help="speed: the pairs, as JSONL")
    p.add_argument("--out", default="/tmp/leap-dpo-peer")
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--tokens-per-pair", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    check(args) if args.mode == "check" else speed(args)


if __name__ == "__main__":
    main()
