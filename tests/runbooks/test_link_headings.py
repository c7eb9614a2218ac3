"""A heading that is only a link, with nothing under it (``## [:back:](README.md#...)``), is a
way back to the site's index, not a step with no instructions."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

# The layout of gasy-africa/rpi4-k8s .docs/cni-plugin.md @2fbd2f60 ("## [:back:](../#...)").
BACK_LINK = """\
# Restart kubelet

## Steps

- [ ] Restart the service

```
sudo systemctl restart kubelet
```

## [:back:](README.md#control-plane)

## Troubleshooting

Check the logs:

```
journalctl -u kubelet
```
"""


def test_a_back_link_heading_is_not_a_step() -> None:
    runbook = parse_runbook(BACK_LINK, runbook_id="kubelet")

    assert [s.title for s in runbook.steps] == ["Restart the service", "Troubleshooting"]
    assert all(s.markdown.strip() for s in runbook.steps)
    assert runbook.context == ()


def test_a_linked_heading_over_its_own_text_is_kept() -> None:
    text = (
        "# Kube alerts\n\n## [KubeAPIDown](https://runbooks.example/kubeapidown)\n\n"
        "1. Check the API server pods.\n2. Restart them.\n"
    )
    runbook = parse_runbook(text, runbook_id="kube")

    assert [s.title for s in runbook.steps] == ["Check the API server pods.", "Restart them."]
