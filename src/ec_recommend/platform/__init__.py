"""The communication fabric every service and edge app uses: RPC, storage, events, auth."""
