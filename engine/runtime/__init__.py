"""Runtime: instances, the human-task index, jobs and messages, over SpiffWorkflow."""
