// local workaround: empty CRF library in the nn worktree (not committed)
