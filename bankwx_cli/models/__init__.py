"""Plain dataclasses passed between layers, one module per area (``models.accounts``,
``models.broadcasts``, ...), so that a command imports only the models it uses (start-up
time). They import nothing from the project but each other."""
