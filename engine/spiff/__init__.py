"""The one package that imports SpiffWorkflow (pinned exactly: its API moves between minors)."""
