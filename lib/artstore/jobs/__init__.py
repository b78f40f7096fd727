"""Background jobs shared by the admin and the job worker (architecture §10): the
procrastinate queue, deferring a job with its history row, and the history's SQL."""
