"""The comparisons a user would make: the same work done one process per item with shell tools.

- Encryption: each value encrypted by its own ``bash`` script that does JS7's hybrid encryption
  with the ``openssl`` command (``openssl rand`` for the one-time key and IV, ``openssl enc
  -aes-128-cbc`` for the value, ``openssl pkeyutl -encrypt`` with PKCS#1 v1.5 for RSA, or
  ``genpkey``/``pkeyutl -derive``/``kdf X963KDF``/``dgst -hmac`` for EC's ECIES), the way JS7's
  OpenSSL shell solution works. The values it makes are checked: they decrypt with js7certctl.
- Apply: one ``curl`` call per certificate against the JOC emulator (log in once, then one
  ``encipherment/certificate/store`` per alias), the way JS7's shell CLI scripts work.

Both run on a sample and are extrapolated linearly to the full count (the caller says so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import run_once

# One value from stdin -> one `enc:` value on stdout (JS7's format, spec/js7-encryption.md).
_BIN = r"""
bin() { # hex on $1 -> bytes on stdout
  local h=$1 out= i
  for ((i = 0; i < ${#h}; i += 2)); do out+="\\x${h:i:2}"; done
  printf "$out"
}
"""

ENCRYPT_RSA = (
    r"""#!/bin/bash
# JS7 hybrid encryption of the value on stdin for the RSA certificate $1, with openssl.
set -eu
cert=$1
hex=$(openssl rand -hex 32)                 # one-time AES-128 key and IV
key=${hex:0:32}; iv=${hex:32:32}
ct=$(openssl enc -aes-128-cbc -K "$key" -iv "$iv" -a -A)
"""
    + _BIN
    + r"""
wrapped=$(bin "$key" | openssl pkeyutl -encrypt -certin -inkey "$cert" \
  -pkeyopt rsa_padding_mode:pkcs1 | openssl base64 -A)
ivb=$(bin "$iv" | openssl base64 -A)
printf 'enc:%s %s %s\n' "$wrapped" "$ivb" "$ct"
"""
)

ENCRYPT_EC = (
    r"""#!/bin/bash
# JS7 hybrid encryption (BouncyCastle ECIES) of the value on stdin for the EC certificate $1.
set -eu
cert=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
hex=$(openssl rand -hex 32)                 # one-time AES-128 key and IV
key=${hex:0:32}; iv=${hex:32:32}
ct=$(openssl enc -aes-128-cbc -K "$key" -iv "$iv" -a -A)
openssl x509 -in "$cert" -pubkey -noout > "$tmp/peer.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/eph.pem"
v=$(openssl pkey -in "$tmp/eph.pem" -pubout -outform DER | tail -c 65 | od -An -tx1 -v \
  | tr -d ' \n')
z=$(openssl pkeyutl -derive -inkey "$tmp/eph.pem" -peerkey "$tmp/peer.pem" | od -An -tx1 -v \
  | tr -d ' \n')
k=$(openssl kdf -keylen 48 -kdfopt digest:SHA1 -kdfopt hexsecret:"$v$z" X963KDF | tr -d ':')
mac=${k:0:64}; stream=${k:64:32}
c=
for ((i = 0; i < 32; i += 2)); do c+=$(printf '%02x' $(( 0x${key:i:2} ^ 0x${stream:i:2} ))); done
"""
    + _BIN
    + r"""
t=$(bin "${c}0000000000000000" | openssl dgst -sha1 -mac HMAC -macopt hexkey:"$mac" -binary \
  | od -An -tx1 -v | tr -d ' \n')
wrapped=$(bin "$v$c$t" | openssl base64 -A)
ivb=$(bin "$iv" | openssl base64 -A)
printf 'enc:%s %s %s\n' "$wrapped" "$ivb" "$ct"
"""
)

# One process per value: the loop starts the encryption script once for each line of $2.
ENCRYPT_LOOP = r"""#!/bin/bash
set -eu
script=$1; cert=$2; values=$3; out=$4
: > "$out"
while IFS= read -r value; do
  printf '%s' "$value" | bash "$script" "$cert" >> "$out"
done < "$values"
"""

# Log in once, then one curl call per certificate; $2 is a folder of JSON request bodies.
CURL_LOOP = r"""#!/bin/bash
set -eu
url=$1; bodies=$2
login=$(curl -sS -f -X POST -u "$JS7_USER:$JS7_PASSWORD" -H 'Accept: application/json' \
  "$url/joc/api/authentication/login")
token=$(printf '%s' "$login" | sed -E 's/.*"accessToken" *: *"([^"]+)".*/\1/')
printf 'X-Access-Token: %s\n' "$token" > "$bodies/../headers.txt"
for body in "$bodies"/*.json; do
  [ -e "$body" ] || continue
  curl -sS -f -o /dev/null -X POST -H @"$bodies/../headers.txt" \
    -H 'Content-Type: application/json' -H 'Accept: application/json' \
    --data-binary @"$body" "$url/joc/api/encipherment/certificate/store"
done
curl -sS -o /dev/null -X POST -H @"$bodies/../headers.txt" "$url/joc/api/authentication/logout"
"""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A comparison measured on ``sample`` items and extrapolated to ``count``."""

    seconds: float  # for ``count`` items
    sample: int
    sample_seconds: float
    count: int
    method: str

    @property
    def per_item(self) -> float:
        return self.seconds / self.count


def openssl_encrypt(
    folder: Path,
    *,
    kind: str,
    cert: Path,
    secrets: Sequence[str],
    count: int,
    env: Mapping[str, str],
) -> tuple[Estimate, list[str]]:
    """Encrypt ``secrets`` one process per value; returns the estimate for ``count`` values and
    the values made (for checking)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"encrypt-{kind}.sh"
    script.write_text(ENCRYPT_RSA if kind == "rsa3072" else ENCRYPT_EC, encoding="utf-8")
    loop = folder / "encrypt-loop.sh"
    loop.write_text(ENCRYPT_LOOP, encoding="utf-8")
    values = folder / f"values-{kind}.txt"
    values.write_text("".join(f"{s}\n" for s in secrets), encoding="utf-8")
    out = folder / f"encrypted-{kind}.txt"
    wall = run_once(
        ["bash", str(loop), str(script), str(cert), str(values), str(out)], cwd=folder, env=env
    ).wall
    made = out.read_text(encoding="utf-8").splitlines()
    estimate = Estimate(
        seconds=wall * count / len(secrets),
        sample=len(secrets),
        sample_seconds=wall,
        count=count,
        method=f"bash + openssl, one process per value; {len(secrets)} values measured, "
        f"scaled to {count:,}",
    )
    return estimate, made


def check_js7_values(values: Sequence[str], secrets: Sequence[str], private_key_pem: bytes) -> int:
    """Decrypt ``values`` with js7certctl and compare with ``secrets``; the number checked.

    Raises AssertionError when one differs (the comparison would not be doing the same work).
    """
    from js7certctl import envelope

    key = envelope.load_private_key(private_key_pem)
    if len(values) != len(secrets):
        raise AssertionError(f"{len(values)} values made for {len(secrets)} secrets")
    for value, secret in zip(values, secrets, strict=True):
        plain = envelope.decrypt_value(key, envelope.parse_value(value))
        if plain != secret.encode("utf-8"):
            raise AssertionError("a value does not decrypt to its secret")
    return len(values)


def curl_store_loop(
    folder: Path,
    *,
    url: str,
    bodies: Sequence[Mapping[str, object]],
    count: int,
    env: Mapping[str, str],
) -> Estimate:
    """Store ``bodies`` with one curl call each; the estimate for ``count`` stores.

    The loop is timed once with no store (log in and out only) and once with the sample; the
    difference is scaled, the login counted once.
    """
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "curl-loop.sh"
    script.write_text(CURL_LOOP, encoding="utf-8")
    empty = folder / "none"
    empty.mkdir(exist_ok=True)
    filled = folder / "bodies"
    filled.mkdir(exist_ok=True)
    for index, body in enumerate(bodies):
        (filled / f"{index:05d}.json").write_text(json.dumps(body), encoding="utf-8")
    fixed = run_once(["bash", str(script), url, str(empty)], cwd=folder, env=env).wall
    wall = run_once(["bash", str(script), url, str(filled)], cwd=folder, env=env).wall
    per_store = max(wall - fixed, 0.0) / len(bodies)
    return Estimate(
        seconds=fixed + per_store * count,
        sample=len(bodies),
        sample_seconds=wall,
        count=count,
        method=f"bash + curl, login once, then one curl call per certificate; "
        f"{len(bodies)} stores measured, scaled to {count:,}",
    )
