import TensorCore
print(Parallel.blasDescription)
