"""placeholder on branch issue-3 (not committed): the real package lives on main."""
