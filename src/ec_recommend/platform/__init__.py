"""The communication fabric every service uses: RPC, storage, events, gateway."""
