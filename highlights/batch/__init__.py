"""Many lessons: one dispatch loop over a pool of workers (this process, local processes, Ray
actors) and the one writer of the database."""
