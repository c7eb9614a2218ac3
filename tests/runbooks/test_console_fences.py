"""A ```console block after a command is usually what the command prints, and stays in its
step; but an author who writes commands in ```console blocks without a ``$`` prompt (as the
prometheus-operator runbooks do) may put two commands one after the other, and the second is a
command to run, not the first one's output."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

KUBE_PROXY = """\
# KubeProxyDown

## Diagnosis

Check the kube-proxy pods:

```console
kubectl get pods -l k8s-app=kube-proxy -n kube-system
```

```console
kubectl logs -n kube-system -l k8s-app=kube-proxy --tail=50
```

## Mitigation

Delete the pods; new ones are created automatically:

```console
kubectl delete pod -l k8s-app=kube-proxy -n kube-system
```

```console
pod "kube-proxy-b9g23" deleted
```
"""


def test_consecutive_console_commands_without_prompts_are_steps_output_is_not() -> None:
    runbook = parse_runbook(KUBE_PROXY, runbook_id="KubeProxyDown")
    markdowns = [s.markdown for s in runbook.steps]
    assert markdowns == [
        "Check the kube-proxy pods:\n\n"
        "```console\nkubectl get pods -l k8s-app=kube-proxy -n kube-system\n```",
        "```console\nkubectl logs -n kube-system -l k8s-app=kube-proxy --tail=50\n```",
        "Delete the pods; new ones are created automatically:\n\n"
        "```console\nkubectl delete pod -l k8s-app=kube-proxy -n kube-system\n```\n\n"
        '```console\npod "kube-proxy-b9g23" deleted\n```',
    ]
    assert [s.section for s in runbook.steps] == ["Diagnosis", "Diagnosis", "Mitigation"]
