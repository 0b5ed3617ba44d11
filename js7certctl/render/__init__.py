"""Views of results: text for people, JSON for machines, Markdown for pull requests."""
