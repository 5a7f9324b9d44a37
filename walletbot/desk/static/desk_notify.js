// (feature script: see walletbot/desk/api.py FEATURES)
