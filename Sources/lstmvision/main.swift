import LSTMVision
print("lstmvision")
