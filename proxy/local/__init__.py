"""The local index: a directory of wheels and sdists served as an upstream, and uploads into it.

`page` builds a project page from the files (pure), `scan` reads the directory (hashes cached
by path, size and mtime), `wheel_contents` opens one wheel, `checks` judges an upload (pure),
`publish` writes uploads, yanks and removals atomically under a per-project lock.
"""
