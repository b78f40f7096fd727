"""The job worker (``artstore serve worker``): runs background jobs from the queue."""
