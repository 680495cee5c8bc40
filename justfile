# leap: `just demo` opens the workbench, `just test` runs the test suite.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install what a fresh machine lacks: cmake and libclang (llama.cpp's build), a C++ compiler,
# OpenBLAS (the trainer's matrix products), pip and venv, Java (ScienceWorld's engine), tmux (the
# workbench's end-to-end test drives the real binary in it), bubblewrap (the shell environment's
# sandbox) and the commands that InterCode-Bash's image had and its tasks' gold commands use (the
# sandbox sees the host's /usr).
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v c++ >/dev/null || missing+=(g++)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    python3 -c "import ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
    command -v java >/dev/null || missing+=(default-jre-headless)
    command -v tmux >/dev/null || missing+=(tmux)
    # command:package. Not md5deep, xxd, wget or sudo: InterCode's image lacked them, and its
    # recorded outputs say so.
    for pair in bwrap:bubblewrap git:git tree:tree jq:jq curl:curl file:file \
        lsof:lsof openssl:openssl ssh:openssh-client ps:procps pstree:psmisc netstat:net-tools \
        ping:iputils-ping dig:dnsutils cpio:cpio cal:ncal column:bsdextrautils crontab:cron; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if command -v dpkg-query >/dev/null; then
        for pkg in libclang-dev libopenblas-dev; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
        done
    fi
    [ ${#missing[@]} -eq 0 ] && exit 0
    if ! command -v apt-get >/dev/null; then
        echo "please install: ${missing[*]} (no apt-get here)" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Fetch the default student model (SmolLM2-135M-Instruct, Q4_1) into the cache; skips when present.
model: deps
    cargo run --quiet -- model fetch

# Build the release binary.
build: deps
    cargo build --release

# Open the workbench on the default model and the shipped scenarios (run folder runs/demo).
demo: deps model deps-external
    cargo run --release --quiet -- tui --run runs/demo --scenarios scenarios

# Run the whole test suite.
test: deps model llama-tools deps-external
    cargo test

# Measure: environment steps/s and shop search latency; the shell sandbox's overhead per action; the OpenEnv protocol's overhead per step (TextWorld); the student against llama-bench; rollout throughput; LoRA training against PyTorch + PEFT; DPO against PyTorch (correctness) and TRL (speed); workbench frame time.
bench: deps model llama-tools peft-venv deps-external
    cargo bench --bench household
    cargo bench --bench shop
    cargo bench --bench shell
    cargo bench --bench external
    cargo bench --bench student
    LEAP_PEFT_PYTHON="$(just --quiet peft-python)" cargo bench --bench train
    LEAP_PEFT_PYTHON="$(just --quiet peft-python)" cargo bench --bench dpo
    cargo bench --bench tui

# Make the training bench's Python peer once: PyTorch + PEFT in a venv in the user cache (GBs).
peft-venv:
    #!/usr/bin/env bash
    set -euo pipefail
    python="$(just --quiet peft-python)"
    venv="$(dirname "$(dirname "$python")")"
    if [ -x "$python" ] && "$python" -c "import torch, transformers, peft, gguf, accelerate, trl" 2>/dev/null; then
        exit 0
    fi
    echo "creating $venv with torch, transformers, peft, trl, gguf, accelerate" >&2
    python3 -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet torch transformers peft trl gguf accelerate

# Where the training bench's Python lives.
peft-python:
    #!/usr/bin/env bash
    cache="${XDG_CACHE_HOME:-}"
    [[ "$cache" == /* ]] || cache="$HOME/.cache"
    echo "$cache/leap/peft-venv/bin/python"

# Skips when the venv was made from the same requirements (a sha256 in it says so).
# Make the external environments' Python (openenv-core, ScienceWorld, TextWorld) in the user cache.
deps-external: deps
    #!/usr/bin/env bash
    set -euo pipefail
    python="$(just --quiet external-python)"
    venv="$(dirname "$(dirname "$python")")"
    want="$(sha256sum assets/envs/requirements.txt | cut -d' ' -f1)"
    marker="$venv/.requirements.sha256"
    if [ -x "$python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
        exit 0
    fi
    echo "installing assets/envs/requirements.txt into $venv" >&2
    rm -f "$marker"
    python3 -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-input -r assets/envs/requirements.txt
    echo "$want" > "$marker"

# Where the external environments' Python lives (leap's default; $LEAP_EXTERNAL_PYTHON overrides it).
external-python:
    #!/usr/bin/env bash
    cache="${XDG_CACHE_HOME:-}"
    [[ "$cache" == /* ]] || cache="$HOME/.cache"
    echo "$cache/leap/external-venv/bin/python"

# Build llama.cpp's llama-server and llama-bench once into the user cache; skips when both exist.
llama-tools: deps
    #!/usr/bin/env bash
    set -euo pipefail
    # llama-cpp-python's source distribution carries a complete llama.cpp tree (the copy vendored
    # by the llama-cpp-sys-2 crate has no tools/ folder).
    version=0.3.36
    cache="${XDG_CACHE_HOME:-}"
    [[ "$cache" == /* ]] || cache="$HOME/.cache"
    root="$cache/leap/llama-tools"
    bin="$root/bin"
    # AMX off: ggml's AMX kernels segfault where the CPU reports AMX but the VM does not grant
    # the tiles (seen on a Sapphire Rapids VM); the AVX-512 kernels serve instead. With
    # GGML_NATIVE, -march=native turns AMX on whatever GGML_AMX_* say, so the compiler is told
    # (explicit -mno-* flags win over what -march implies, wherever they stand).
    noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    flags="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
    if [ -x "$bin/llama-server" ] && [ -x "$bin/llama-bench" ] && [ "$(cat "$bin/.flags" 2>/dev/null)" = "$version $flags $noamx" ]; then
        echo "llama-server: $bin/llama-server"
        echo "llama-bench:  $bin/llama-bench"
        exit 0
    fi
    mkdir -p "$root/sdist"
    work="$(mktemp -d "$root/build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    sdist="$root/sdist/llama_cpp_python-$version.tar.gz"
    if [ ! -f "$sdist" ]; then
        echo "downloading the llama-cpp-python $version source distribution" >&2
        PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip download --quiet --no-deps \
            --no-binary :all: "llama-cpp-python==$version" -d "$work/dl"
        mv "$work/dl/llama_cpp_python-$version.tar.gz" "$sdist"
    fi
    tar -xzf "$sdist" -C "$work"
    src="$work/llama_cpp_python-$version/vendor/llama.cpp"
    # Static binaries (they can be copied anywhere); no web UI, no HTTPS, nothing fetched at build.
    echo "configuring llama.cpp" >&2
    # shellcheck disable=SC2086
    cmake -S "$src" -B "$work/build" $flags -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" \
        >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }
    echo "building llama-server and llama-bench (a few minutes)" >&2
    cmake --build "$work/build" --target llama-server llama-bench -j "$(nproc 2>/dev/null || echo 2)"
    mkdir -p "$bin"
    for tool in llama-server llama-bench; do
        install -m 755 "$work/build/bin/$tool" "$bin/.$tool.tmp"
        mv "$bin/.$tool.tmp" "$bin/$tool"
    done
    echo "$version $flags $noamx" > "$bin/.flags"
    echo "llama-server: $bin/llama-server"
    echo "llama-bench:  $bin/llama-bench"
