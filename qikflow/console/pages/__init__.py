"""The console's pages, one module per page family; each handler renders one template."""
