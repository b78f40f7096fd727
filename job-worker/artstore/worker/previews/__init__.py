"""Previews (docs/previews.md): images made from stored files by the job worker."""
