"""The Python route a user would otherwise take: PyTorch + PEFT LoRA on CPU.

Loads the same GGUF through transformers (dequantised to F32), adds LoRA adapters of the same
rank, alpha and target projections as `leap train`, and times AdamW steps on windows of the same
length with the same thread count. Prints one JSON object: steady-state seconds per step, tokens
per second and the process's peak resident memory.

Run by `benches/train.rs` (`just bench`) from the virtual environment the recipe makes.
"""

import argparse
import json
import os
import resource
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gguf", required=True, help="the GGUF model file")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument(
        "--targets",
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=6, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--bf16",
        action="store_true",
        help="mixed precision: the forward and backward under torch.autocast(bfloat16)",
    )
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder, name = os.path.split(os.path.abspath(args.gguf))
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, torch_dtype=torch.float32
    )
    model.config.use_cache = False
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=0.0,
        target_modules=args.targets.split(","),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr
    )

    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, vocab, (1, args.seq_len), generator=generator)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)

    step_s = sorted(times)[len(times) // 2]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump(
        {
            "step_s": step_s,
            "tokens_per_s": args.seq_len / step_s,
            "peak_rss_mb": peak_kib / 1024.0,
            "trainable_parameters": trainable,
            "threads": args.threads,
            "seq_len": args.seq_len,
            "bf16": args.bf16,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
