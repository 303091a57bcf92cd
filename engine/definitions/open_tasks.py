"""Tasks that name nobody: said at lint, since who may do a step is what an inspector asks first.

A user, manual or plain task that lies in no named lane (a subprocess's tasks inherit the subprocess's
lane, as SpiffWorkflow parses them), has no ``candidateRoles`` property and no ``camunda:candidateGroups``
is open to any signed-in user (``engine/README.md``). That stays allowed, as lane-less models run today,
but lint and deploy name each such task, so that a process owner chooses it rather than gets it.
"""

from __future__ import annotations

from lxml import etree

from engine.definitions.interchange import BPMN_NS, CAMUNDA_NS, SPIFF_NS, Notice

HUMAN_TAGS = {f"{{{BPMN_NS}}}{tag}" for tag in ("userTask", "manualTask", "task")}
CONTAINERS = {f"{{{BPMN_NS}}}{tag}" for tag in ("subProcess", "transaction", "adHocSubProcess")}
CANDIDATE_ROLES = f"./{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property" \
                  "[@name='candidateRoles']"


def open_tasks(file: str, root: etree._Element) -> list[Notice]:
    """One ``open_to_any_user`` notice per human task of ``root`` that names no role."""
    in_named_lane = {(ref.text or "").strip() for ref in root.iter(f"{{{BPMN_NS}}}flowNodeRef")
                     if (ref.getparent().get("name") or "").strip()}
    found = []
    for node in root.iter(*HUMAN_TAGS):
        governed = [node, *(a for a in node.iterancestors() if a.tag in CONTAINERS)]
        in_lane = any(element.get("id") in in_named_lane for element in governed)
        groups = (node.get(f"{{{CAMUNDA_NS}}}candidateGroups") or "").strip()
        if in_lane or groups or node.find(CANDIDATE_ROLES) is not None:
            continue
        found.append(Notice("No lane, candidateRoles or candidate group names who may do this task: any "
                            "signed-in user may claim, complete and sign it. Put it in a lane naming a role "
                            "to restrict it.", file, node.get("id"), node.sourceline, "open_to_any_user"))
    return found
