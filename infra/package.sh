#!/usr/bin/env bash
# `make package`: builds the six Lambda functions into the zips the template
# deploys, and writes target/package/template.yaml whose CodeUri names them.
#
#   make package                                # x86_64, Amazon Linux 2023's glibc (2.34)
#   BERTH_LAMBDA_TARGET=aarch64-unknown-linux-gnu.2.34 make package
#                                               # arm64: needs `rustup target add aarch64-unknown-linux-gnu`
#                                               # and `Architectures: [arm64]` in infra/template.yaml
#
# cargo-lambda links through zig, which pins the glibc version in the target
# triple's suffix, so the binaries run on provided.al2023 whatever this
# machine's glibc is. Both come from PyPI into infra/.package-venv, installed
# once from infra/package-requirements.txt (reinstalled when it changes).
#
# Then deploy the zips (no `sam build`):
#   sam deploy --template-file target/package/template.yaml --stack-name berth --guided
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=infra/.package-venv
TARGET="${BERTH_LAMBDA_TARGET:-x86_64-unknown-linux-gnu.2.34}"
FUNCTIONS=(berth-api berth-agent-gateway berth-webhooks berth-dispatcher berth-packager berth-sweeper)

want="$(sha256sum infra/package-requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    echo "package: installing cargo-lambda and zig into $VENV..."
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/package-requirements.txt
    echo "$want" >"$VENV/.requirements.sha256"
fi
# The venv's python3 is on PATH, so cargo-lambda finds zig as `python3 -m ziglang`.
export PATH="$PWD/$VENV/bin:$PATH"

packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
CARGO_PROFILE_RELEASE_STRIP=symbols cargo lambda build --release --locked --target "$TARGET" --output-format zip "${packages[@]}"

# The template, with each function's CodeUri pointing at its zip (relative to
# target/package/) instead of the workspace that `sam build` compiles.
mkdir -p target/package
python3 - "$TARGET" <<'PY'
import re, sys
out, binary = [], None
for line in open("infra/template.yaml"):
    m = re.match(r"\s+Binary: (\S+)", line)
    if m:
        binary = m.group(1)
    m = re.match(r"(\s+)CodeUri: \.\.\s*$", line)
    if m:
        if binary is None:
            sys.exit("package: a CodeUri without a BuildProperties.Binary before it")
        line = f"{m.group(1)}CodeUri: ../lambda/{binary}/bootstrap.zip\n"
        binary = None
    out.append(line)
if sys.argv[1].startswith("aarch64"):
    out = [l.replace("- x86_64", "- arm64").replace("[x86_64]", "[arm64]") for l in out]
open("target/package/template.yaml", "w").writelines(out)
PY

# No binary may need a newer glibc than the target's (what zig was asked for).
want_glibc="${TARGET##*-gnu.}"
if [ "$want_glibc" != "$TARGET" ]; then
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    for f in "${FUNCTIONS[@]}"; do
        unzip -p "target/lambda/$f/bootstrap.zip" bootstrap >"$scratch/bootstrap"
        needs="$(objdump -T "$scratch/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
        if [ "$(printf '%s\n%s\n' "$needs" "$want_glibc" | sort -V | tail -1)" != "$want_glibc" ]; then
            echo "package: $f needs glibc $needs, newer than the target's $want_glibc" >&2
            exit 1
        fi
        echo "package: $f needs glibc $needs at most (target $want_glibc)"
    done
fi

echo "package: target/package/template.yaml"
for f in "${FUNCTIONS[@]}"; do
    zip="target/lambda/$f/bootstrap.zip"
    unzipped="$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")"
    printf 'package: %-50s %8d KiB zipped, %8d KiB unzipped\n' "$zip" "$(($(stat -c %s "$zip") / 1024))" "$((unzipped / 1024))"
done
