"""The attendant's board: shoppers' calls for assistance and carts waiting for an age check."""
