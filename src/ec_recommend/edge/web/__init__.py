"""The browser front end: storefront, seller desk and operator console, served by the gateway."""
