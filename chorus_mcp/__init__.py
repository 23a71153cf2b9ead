"""Chorus's one import name: `server`, `strategies`, `config`.

The installed wheel holds the three folders inside this package, so nothing called `server`,
`strategies` or `config` lands at the top of a user's environment. In a source checkout they stand at
the repository's top level, where the design puts them, and are reached through symbolic links beside
this file; a checkout made without symbolic links (git on Windows by default) gets them by extending
this package's search path to the repository root instead.
"""

import os as _os

if not _os.path.isdir(_os.path.join(__path__[0], "strategies")):
    __path__.append(_os.path.dirname(__path__[0]))
