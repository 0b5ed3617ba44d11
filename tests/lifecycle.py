"""A realistic repository for the lifecycle tests: manifests, JS7 inventory exports, values.

The inventory files have the shapes JS7 documents and JOC's Git integration writes: one JSON file
per object, named ``<name>.<type>.json`` in folders mirroring the inventory, pretty-printed the way
Jackson does (``"key" : value``). Argument values are JS7 expressions, so a string keeps its own
double quotes: ``"token" : "\\"enc:...\\""``.

Two aliases: ``agent-payments`` (RSA-2048, ``certificateFile``) and ``agent-reporting``
(EC P-256, inline ``certificate``). Plaintexts are in :data:`PLAINTEXTS` so that tests can check
that none of them is ever printed or written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from js7certctl.envelope import Encryptor, load_public_key
from tests import certgen
from tests.helpers import GitRepo, Run, run_cli

PAYMENTS = "agent-payments"
REPORTING = "agent-reporting"
OLD_KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent-payments.key"
NEW_KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent-payments-2027.key"

# Every secret of the fixture, by where it ends up; none may ever appear in output or files.
PLAINTEXTS = {
    "db_password": "Db-pa55: #word",
    "api_token": "tok-7c1f09e2",
    "pin": "0042",
    "smtp": "smtp-secret-ü",
    "values.db.password": "values-db-password",
    "values.tokens[0]": "first-token-x1",
    "values.tokens[1]": "second-token-x2",
    "values.folded": "folded-secret-x3",
    "values.anchored": "anchored-secret-x4",
    "values.wrapped": "wrapped-secret-x7",
    "values.literal": "literal-secret-x8",
    "json.api": "json-api-secret-x5",
    "reporting.key": "reporting-secret-x6",
}

BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def jackson(document: Any) -> str:
    """JSON as Jackson's default pretty printer writes it (JOC's exports)."""
    return json.dumps(document, indent=2, separators=(",", " : "), ensure_ascii=False) + "\n"


def expression(text: str) -> str:
    """A JS7 string expression: the text in double quotes."""
    return f'"{text}"'


@dataclass
class Lifecycle:
    repo: GitRepo
    payments_key: rsa.RSAPrivateKey
    reporting_key: ec.EllipticCurvePrivateKey
    payments_key_file: Path
    reporting_key_file: Path

    @property
    def path(self) -> Path:
        return self.repo.path

    def cli(self, *args: str) -> Run:
        return run_cli(*args, "--repo", str(self.repo.path))

    def read(self, rel: str) -> str:
        return (self.repo.path / rel).read_text(encoding="utf-8")


def payments_manifest() -> str:
    return f"""\
# The Agents of the payments team. Rotated by `js7certctl rotate`.
apiVersion: js7certctl/v1
kind: EncryptionCertificate
metadata:
  alias: {PAYMENTS}
  labels: {{team: payments}}
spec:
  certificateFile: {PAYMENTS}.crt   # PEM beside this file
  privateKeyPath: {OLD_KEY_PATH}
  agents: [agent-001]
"""


def reporting_manifest(certificate: str) -> str:
    body = "".join(f"    {line}\n" for line in certificate.strip().splitlines())
    return f"""\
apiVersion: js7certctl/v1
kind: EncryptionCertificate
metadata:
  alias: {REPORTING}
spec:
  # inline, so that the manifest holds it all
  certificate: |
{body}  privateKeyPath: /var/sos-berlin.com/js7/agent/config/private/{REPORTING}.key
"""


VALUES_YAML = """\
# Arguments of the Job Resource /Payments/Database, encrypted with `encrypt --values`.
db:
  user: "payments"        # quoted, stays quoted
  password: 'values-db-password'
  port: 5432              # numbers are left alone
tokens:
  - first-token-x1
  - "second-token-x2"
folded: >-
  folded-secret-x3
anchored: &shared anchored-secret-x4
again: *shared            # the same node
"""


def _encrypt_values(repo: GitRepo, encryptor: Encryptor) -> None:
    """`encrypt --values` through the CLI, as an operator would; then two values added by hand
    as block scalars (a long value folded over two lines, and a literal block)."""
    repo.write("plain/payments-values.yaml", VALUES_YAML)
    (repo.path / "secrets").mkdir()
    result = run_cli(
        "encrypt",
        "--alias",
        PAYMENTS,
        "--values",
        str(repo.path / "plain" / "payments-values.yaml"),
        "--out",
        str(repo.path / "secrets" / "payments-values.yaml"),
        "--repo",
        str(repo.path),
    )
    assert result.exit_code == 0, result.stderr
    (repo.path / "plain" / "payments-values.yaml").unlink()
    (repo.path / "plain").rmdir()
    wrapped, iv, ciphertext = (
        encryptor.encrypt(PLAINTEXTS["values.wrapped"].encode()).to_string().split(" ")
    )
    literal = encryptor.encrypt(PLAINTEXTS["values.literal"].encode()).to_string()
    with open(repo.path / "secrets" / "payments-values.yaml", "a", encoding="utf-8") as handle:
        handle.write(
            "# Added by hand: a long value folded over two lines, and a literal block.\n"
            f"wrapped: >-\n  {wrapped}\n  {iv} {ciphertext}\nliteral: |\n  {literal}\n"
        )


def build(repo: GitRepo, tmp_path: Path, *, commit: bool = True) -> Lifecycle:
    """Write the repository (and the private keys outside it) and commit it."""
    payments_key = certgen.rsa_key(2048)
    reporting_key = certgen.ec_key("P-256")
    payments_cert = certgen.make_cert(payments_key, cn=PAYMENTS)
    reporting_cert = certgen.make_cert(reporting_key, cn=REPORTING)
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    payments_key_file = keys / f"{PAYMENTS}.key"
    payments_key_file.write_text(certgen.private_key_pem(payments_key))
    reporting_key_file = keys / f"{REPORTING}.key"
    reporting_key_file.write_text(certgen.private_key_pem(reporting_key))

    repo.write("js7certctl.yaml", "manifests: [certs/]\n")
    repo.write(f"certs/{PAYMENTS}.crt", payments_cert)
    repo.write(f"certs/{PAYMENTS}.yaml", payments_manifest())
    repo.write(f"certs/{REPORTING}.yaml", reporting_manifest(reporting_cert))

    pay = Encryptor(load_public_key(payments_cert.encode())[0])
    rep = Encryptor(load_public_key(reporting_cert.encode())[0])

    def enc(encryptor: Encryptor, name: str) -> str:
        return encryptor.encrypt(PLAINTEXTS[name].encode()).to_string()

    # A Job Resource holding secrets; jobs include it together with the alias's Job Resource.
    repo.write(
        "inventory/Payments/Database.jobresource.json",
        jackson(
            {
                "TYPE": "JobResource",
                "arguments": {
                    "db_user": expression("payments"),
                    "db_password": expression(enc(pay, "db_password")),
                    "smtp_password": enc(pay, "smtp"),
                },
                "env": {"DB_PASSWORD": "$db_password"},
                "title": "Payments database",
            }
        ),
    )
    # The Job Resource JOC itself writes for the alias (exported by its Git integration).
    repo.write(
        f"inventory/Encryption/{PAYMENTS}.jobresource.json",
        jackson(
            {
                "TYPE": "JobResource",
                "arguments": {
                    "encipherment_certificate": expression(payments_cert),
                    "encipherment_private_key_path": expression(OLD_KEY_PATH),
                },
                "env": {
                    "ENCIPHERMENT_CERTIFICATE": "$encipherment_certificate",
                    "ENCIPHERMENT_PRIVATE_KEY_PATH": "$encipherment_private_key_path",
                },
            }
        ),
    )
    repo.write(
        "inventory/Payments/pay-invoices.workflow.json",
        jackson(
            {
                "TYPE": "Workflow",
                "version": "1.0.0",
                "timeZone": "Etc/UTC",
                "orderPreparation": {
                    "parameters": {
                        "pin": {"type": "String", "default": expression(enc(pay, "pin"))}
                    },
                    "allowUndeclared": False,
                },
                "jobResourceNames": [PAYMENTS],
                "instructions": [
                    {"TYPE": "Execute.Named", "jobName": "charge", "label": "charge"},
                    {"TYPE": "Execute.Named", "jobName": "notify", "label": "notify"},
                ],
                "jobs": {
                    "charge": {
                        "agentName": "agent-001",
                        "executable": {
                            "TYPE": "ShellScriptExecutable",
                            "script": 'js7_decrypt.sh --key="$ENCIPHERMENT_PRIVATE_KEY_PATH" '
                            '--in="$DB_PASSWORD"\n',
                        },
                        "jobResourceNames": ["Database"],
                        "defaultArguments": {"api_token": expression(enc(pay, "api_token"))},
                    },
                    "notify": {
                        "agentName": "agent-001",
                        "executable": {"TYPE": "InternalExecutable", "className": "x.Notify"},
                        "jobResourceNames": [PAYMENTS, "Database"],
                    },
                },
            }
        ),
    )
    repo.write(
        "inventory/Reporting/daily-report.workflow.json",
        jackson(
            {
                "TYPE": "Workflow",
                "version": "1.0.0",
                "instructions": [{"TYPE": "Execute.Named", "jobName": "report"}],
                "jobs": {
                    "report": {
                        "agentName": "agent-002",
                        "executable": {"TYPE": "ShellScriptExecutable", "script": "report.sh\n"},
                        "jobResourceNames": [REPORTING],
                        "defaultArguments": {"key": expression(enc(rep, "reporting.key"))},
                    }
                },
            }
        ),
    )
    # A job template naming the alias's Job Resource (another object type that references it).
    repo.write(
        "inventory/Templates/payments-job.jobtemplate.json",
        jackson(
            {
                "TYPE": "JobTemplate",
                "executable": {"TYPE": "ShellScriptExecutable", "script": "pay.sh\n"},
                "jobResourceNames": [PAYMENTS],
            }
        ),
    )
    _encrypt_values(repo, pay)
    # The output of `encrypt --values` for a JSON file, indented with tabs.
    repo.write(
        "secrets/api.json",
        json.dumps({"api": {"secret": enc(pay, "json.api")}}, indent="\t") + "\n",
    )
    if commit:
        repo.commit("certificates, inventory and secrets")
    return Lifecycle(repo, payments_key, reporting_key, payments_key_file, reporting_key_file)


def without_values(text: str) -> str:
    """The text with every Base64 run (the fields of the enc: values) replaced by a placeholder,
    to compare the formatting around them."""
    return BASE64_RUN.sub("…", text)
