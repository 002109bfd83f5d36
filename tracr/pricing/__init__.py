"""What a hosted model's pages cost: built-in list prices with their date and source, and a run's cost record."""
