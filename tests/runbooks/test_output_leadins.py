"""What a command prints, introduced by a word for output ("Returns:", "Output:", "Retourne :",
also as a quote "> Returns :"), stays in that command's step, as "Example output:" does."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook

# Excerpt of gasy-africa/rpi4-k8s .docs/cni-plugin.md @2fbd2f60.
CHECKLIST = """\
# :droplet: CNI Plugin

## :a: Installer le plugin CNI

- [ ] Installer le plugin


```
cilium install
```
> Returns :

```yaml
ℹ️  Using Cilium version 1.13.2
✅ Cilium was successfully installed! Run 'cilium status' to view installation health
```

- [ ] Vérifier le statutt

```
cilium status
```
> Retourne :
```yaml
    Cilium:          OK
```
"""


def test_a_quoted_returns_stays_with_the_items_command() -> None:
    runbook = parse_runbook(CHECKLIST, runbook_id="cni")

    assert [s.title for s in runbook.steps] == ["Installer le plugin", "Vérifier le statutt"]
    assert "cilium install" in runbook.steps[0].markdown
    assert "Cilium was successfully installed!" in runbook.steps[0].markdown
    assert "> Retourne :" in runbook.steps[1].markdown
    assert "Cilium:          OK" in runbook.steps[1].markdown


@pytest.mark.parametrize(
    "lead",
    ["Returns:", "Output:", "> Output:", "Expected output:", "Sortie :", "输出："],
    ids=["returns", "output", "quoted", "expected", "french", "chinese"],
)
def test_an_output_word_after_a_command_is_not_a_step_of_its_own(lead: str) -> None:
    text = (
        "# Pods\n\n## Diagnosis\n\nList the pods:\n\n```\nkubectl get pods\n```\n\n"
        f"{lead}\n\n```\nNAME   READY\napi-1  1/1\n```\n\n"
        "Restart the deployment:\n\n```\nkubectl rollout restart deploy/api\n```\n"
    )
    runbook = parse_runbook(text, runbook_id="pods")

    assert [s.title for s in runbook.steps] == ["List the pods", "Restart the deployment"]
    assert "api-1  1/1" in runbook.steps[0].markdown


def test_a_quote_that_says_more_than_output_is_not_taken_for_it() -> None:
    text = (
        "# Pods\n\n## Diagnosis\n\nList the pods:\n\n```\nkubectl get pods\n```\n\n"
        "> Careful: this restarts every pod.\n\n```\nkubectl rollout restart deploy/api\n```\n"
    )
    runbook = parse_runbook(text, runbook_id="pods")

    assert len(runbook.steps) == 2
    assert "rollout restart" not in runbook.steps[0].markdown
