"""The ArtStore web console (issue 17): a small single-page app in plain ES modules,
served by the admin module at ``/console`` (docs/console.md)."""
