"""llmops.devbox.langfuse_box: the one rule for which Langfuse a box reports to."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.langfuse_box import langfuse_box


@pytest.mark.parametrize("host,groups,expected", [
    ("box1", {"langfuse": ["box1"], "devboxes": ["box1"]}, "box1"),                 # all-in-one
    ("alice", {"langfuse": ["central"], "devboxes": ["central", "alice"]}, "central"),  # fleet dev box
    ("central", {"langfuse": ["central"], "devboxes": ["alice"]}, "central"),       # central, Langfuse only
    ("b", {"langfuse": ["a", "b"], "devboxes": ["b", "c"]}, "b"),                   # its own, not the first
    ("c", {"langfuse": ["a", "b"], "devboxes": ["b", "c"]}, "a"),                   # the first otherwise
    ("alice", {"devboxes": ["alice"]}, ""),                                         # no Langfuse at all
    ("alice", {"langfuse": [], "devboxes": ["alice"]}, ""),
])
def test_the_langfuse_a_box_reports_to(host, groups, expected):
    assert langfuse_box(host, groups) == expected


@pytest.mark.parametrize("host,groups", [("", {}), (None, {}), ("a", None), ("a", {"langfuse": "a"})])
def test_wrong_input_is_named(host, groups):
    with pytest.raises(AnsibleFilterError, match="langfuse_box"):
        langfuse_box(host, groups)
